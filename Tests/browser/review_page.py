"""Drives the agent's review page in headless Chromium.

usage: review_page.py URL SCREENSHOT_DIR
Checks: the recommendation and the cards, four charts drawn with units and legends (min, avg, max, last), a
legend click hides a series, the forecast (verdicts, the month's range, the trend chart), the month view, no
console errors; writes screenshots.
"""
import os
import sys

from selenium.webdriver.common.by import By

from common import chromium, console_errors, wait_until


def main(url, shots):
    driver = chromium(1300, 1400)
    try:
        driver.get(url + "/review.html")
        wait_until(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"), timeout=30, what="the review")
        assert driver.find_element(By.CSS_SELECTOR, "#recommendation h2").text, "a recommendation"
        assert len(driver.find_elements(By.CSS_SELECTOR, "#cards .card")) >= 9
        charts = driver.execute_script("""
            return charts.map(c => ({metric: c.def.metric, unit: c.chart.options.unit, points: Number(c.canvas.dataset.points || 0),
                                     rows: [...c.legend.querySelectorAll('tr.series')].map(r => [...r.cells].map(x => x.textContent))}));""")
        assert len(charts) == 4, charts
        for chart in charts:
            assert chart["points"] > 50, chart
            assert chart["unit"], chart
            assert chart["rows"] and all(len(r) == 5 and r[3] != "–" for r in chart["rows"]), chart
        row = driver.find_element(By.CSS_SELECTOR, ".panel[data-metric=players] .legend tr.series")
        before = int(driver.execute_script("return document.querySelector('.panel[data-metric=players] canvas').dataset.points"))
        row.click()
        wait_until(lambda: "hidden" in driver.find_element(By.CSS_SELECTOR, ".panel[data-metric=players] .legend tr.series").get_attribute("class"),
                   what="the series hidden")
        after = int(driver.execute_script("return document.querySelector('.panel[data-metric=players] canvas').dataset.points"))
        assert after < before, (before, after)
        # Looking ahead: a verdict per trigger, the month's range, and the players' trend drawn to 90 days ahead.
        verdicts = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#forecast tr")]
        assert len(verdicts) == 5 and all(("crossed" in v) or ("not within 90 days" in v) or ("not enough data" in v) or ("already" in v) for v in verdicts), verdicts
        assert "projected" in driver.find_element(By.ID, "month-forecast").text
        trend = driver.execute_script("return forecastChart.series.map(s => ({name: s.name, n: s.points.length}))")
        assert trend[0]["n"] >= 7 and any(s["name"] == "trend" for s in trend), trend
        # Cost advice: a line per tip, and the credit balance charted (phase 1 runs a burstable t3.small).
        advice = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#advice li")]
        assert len(advice) == 6 and advice[0].startswith("CPU credits") and any(a.startswith("Other providers") for a in advice), advice
        credits = driver.execute_script("return creditsChart ? creditsChart.series.map(s => s.points.length) : []")
        assert credits and all(n >= 24 for n in credits), credits
        driver.save_screenshot(os.path.join(shots, "review.png"))

        # The month view beside the day.
        first = driver.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")
        driver.find_element(By.CSS_SELECTOR, "#period option[value=month]").click()
        wait_until(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") not in (None, first), timeout=30, what="the month")
        assert "period=month" in driver.current_url
        assert "month" in driver.find_element(By.ID, "cards").text.lower(), driver.find_element(By.ID, "cards").text
        driver.save_screenshot(os.path.join(shots, "review-month.png"))
        errors = console_errors(driver)
        assert not errors, f"console errors: {errors}"
        print("review ok")
    finally:
        driver.quit()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
