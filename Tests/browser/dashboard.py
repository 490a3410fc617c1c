"""Drives the metrics agent's dashboard in headless Chromium.

usage: dashboard.py URL SCREENSHOT_DIR
Checks: every chart drawn (data in the plot area), range switching, the tooltip
on hover, drag to zoom, the view in the URL, the dark theme, no console errors.
"""
import os
import re
import sys
import time

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from common import chromium, console_errors, wait_until

# Counts strongly coloured pixels in each chart's plot area: series lines are saturated, grid and text are grey.
COLOURED_PIXELS = """
return [...document.querySelectorAll('.panel canvas')].map(c => {
  const g = c.getContext('2d'), d = g.getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    const mx = Math.max(d[i], d[i+1], d[i+2]), mn = Math.min(d[i], d[i+1], d[i+2]);
    if (d[i+3] > 0 && mx - mn > 60) n++;
  }
  return {metric: c.parentElement.dataset.metric, points: Number(c.dataset.points || 0), coloured: n, tier: c.dataset.tier};
});
"""


def loaded(driver, previous):
    value = driver.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")
    return value if value and value != previous else None


def main(url, shots):
    driver = chromium(1400, 1000)
    try:
        driver.get(url + "/?range=1y")
        state = wait_until(lambda: loaded(driver, None), timeout=30, what="the first load")
        driver.save_screenshot(os.path.join(shots, "dashboard-1y.png"))
        charts = driver.execute_script(COLOURED_PIXELS)
        assert len(charts) >= 8, f"only {len(charts)} charts"
        for chart in charts:
            assert chart["points"] > 100, f"chart {chart['metric']} drew {chart['points']} points"
            assert chart["coloured"] > 200, f"chart {chart['metric']} looks blank ({chart['coloured']} coloured pixels)"
            assert chart["tier"] == "1d", f"a year is drawn in days, from the day tier, not {chart['tier']}"
        driver.save_screenshot(os.path.join(shots, "dashboard-1y.png"))

        for button, tier in (("24h", "5m"), ("30d", "1h"), ("7d", "5m"), ("1h", "raw")):
            driver.find_element(By.CSS_SELECTOR, f'#ranges button[data-range="{button}"]').click()
            state = wait_until(lambda: loaded(driver, state), timeout=20, what=f"the {button} view")
            assert f"range={button}" in driver.current_url, driver.current_url
            charts = driver.execute_script(COLOURED_PIXELS)
            assert all(c["tier"] == tier for c in charts), f"{button}: tiers {[c['tier'] for c in charts]}"
            assert all(c["points"] >= 10 for c in charts), f"{button}: empty chart {[c['points'] for c in charts]}"

        # Units on the y-axis from the catalogue, whole-number ticks for counts, no decimals on counted peaks.
        panels = driver.execute_script("""
            return charts.map(c => ({metric: c.definition.metric, unit: c.chart.options.unit, step: c.chart.yStep,
                                     integer: c.chart.integer(), peak: c.peak.textContent,
                                     csv: c.csv.getAttribute('href'), json: c.json.getAttribute('href')}));""")
        units = {p["metric"]: p["unit"] for p in panels}
        assert units["cpu_percent"] == "%" and units["rss_mb"] == "MiB" and units["players"] == "players" and units["latency_p95_ms"] == "ms", units
        for p in panels:
            if p["integer"]:
                assert float(p["step"]).is_integer(), f"{p['metric']}: tick step {p['step']}"
        players = next(p for p in panels if p["metric"] == "players")
        assert re.match(r"peak \d+ players at \d{4}-\d\d-\d\d \d\d:\d\d UTC", players["peak"]), players["peak"]

        # Every panel downloads what it shows: CSV with a column per series, and the JSON answer.
        driver.set_script_timeout(30)
        download = driver.execute_async_script("""
            const p = charts.find(c => c.definition.metric === 'players');
            const done = arguments[arguments.length - 1];
            Promise.all([fetch(p.csv.href).then(r => r.text()), fetch(p.json.href).then(r => r.json())])
              .then(([csv, json]) => done({csv, series: json.series.length, peaks: json.peaks}));""")
        header = download["csv"].split("\n")[0].split(",")
        assert header[0] == "timestamp" and len(header) == download["series"] + (1 if download["series"] > 1 else 0) + 1, header
        assert len(download["csv"].strip().split("\n")) > 10
        assert download["peaks"], "a chart of maxima carries its exact peaks"

        # Legends: figures per series; a click hides a series, shift-click shows it alone, again shows all.
        legend_rows = lambda: driver.execute_script(
            "return [...document.querySelectorAll('.panel[data-metric=players] .legend tr.series')].map(r => ({name: r.dataset.series, hidden: r.classList.contains('hidden'), cells: [...r.cells].map(c => c.textContent)}));")
        rows = legend_rows()
        assert len(rows) >= 2 and all(len(r["cells"]) == 5 and r["cells"][3] != "–" for r in rows), rows
        drawn = lambda: int(driver.execute_script("return document.querySelector('.panel[data-metric=players] canvas').dataset.points"))
        before = drawn()
        first = driver.find_element(By.CSS_SELECTOR, ".panel[data-metric=players] .legend tr.series")
        first.click()
        assert legend_rows()[0]["hidden"] and drawn() < before, (legend_rows()[0], drawn(), before)
        ActionChains(driver).key_down(Keys.SHIFT).click(driver.find_element(By.CSS_SELECTOR, ".panel[data-metric=players] .legend tr.series")).key_up(Keys.SHIFT).perform()
        rows = legend_rows()
        assert not rows[0]["hidden"] and all(r["hidden"] for r in rows[1:]), rows
        ActionChains(driver).key_down(Keys.SHIFT).click(driver.find_element(By.CSS_SELECTOR, ".panel[data-metric=players] .legend tr.series")).key_up(Keys.SHIFT).perform()
        assert not any(r["hidden"] for r in legend_rows()) and drawn() == before
        driver.save_screenshot(os.path.join(shots, "dashboard-legends.png"))

        # The alerts panel says what fires now, since when, its value and who was told, and the last 24 hours.
        wait_until(lambda: driver.find_element(By.ID, "alerts-count").text != "", what="the alerts panel")
        api = driver.execute_async_script("fetch('/api/alerts').then(r => r.json()).then(arguments[arguments.length - 1])")
        firing = [(r["name"], a["instance_id"]) for r in api["rules"] for a in r["alerts"] if a["state"] == "firing"]
        rows = driver.find_elements(By.CSS_SELECTOR, "#alerts-firing tr.firing")
        assert len(rows) == len(firing), (len(rows), firing)
        if firing:
            assert driver.find_element(By.ID, "alerts-count").text == f"{len(firing)} firing"
            cells = rows[0].find_elements(By.TAG_NAME, "td")
            assert (cells[0].text, cells[1].text) in firing and "UTC" in cells[2].text, [c.text for c in cells]
        history = driver.find_elements(By.CSS_SELECTOR, "#alerts-history li")
        assert history, "the last 24 hours are listed"
        # A click on an alert marker in a chart leads to that alert.
        spot = driver.execute_script("""
            const c = charts[0].chart;
            const a = c.annotations.find(a => a.kind === 'alert' && a.time >= c.from && a.time <= c.to);
            if (!a) return null;
            const r = c.canvas.getBoundingClientRect();
            return {x: Math.round(c.xOf(a.time) - r.width / 2), y: Math.round(c.plot.top + 30 - r.height / 2)};""")
        if spot:
            canvas = driver.find_elements(By.CSS_SELECTOR, ".panel canvas")[0]
            ActionChains(driver).move_to_element_with_offset(canvas, spot["x"], spot["y"]).click().perform()
            wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#alerts .highlight"), what="the alert opened from its marker")
            driver.save_screenshot(os.path.join(shots, "dashboard-alerts.png"))

        # Tooltip on hover, with the crosshair on every chart.
        canvas = driver.find_elements(By.CSS_SELECTOR, ".panel canvas")[0]
        ActionChains(driver).move_to_element_with_offset(canvas, 60, 0).perform()
        tooltip = driver.find_element(By.ID, "tooltip")
        wait_until(lambda: tooltip.is_displayed() and "UTC" in tooltip.text, what="the tooltip")
        assert "game-" in tooltip.text or "fleet" in tooltip.text, tooltip.text
        driver.save_screenshot(os.path.join(shots, "dashboard-tooltip.png"))

        # Drag to zoom: the URL holds the new window.
        ActionChains(driver).move_to_element_with_offset(canvas, -150, 0).click_and_hold() \
            .move_by_offset(120, 0).release().perform()
        state = wait_until(lambda: loaded(driver, state), timeout=20, what="the zoomed view")
        assert "from=" in driver.current_url and "to=" in driver.current_url, driver.current_url

        # The view survives a reload from its URL; the dark theme applies.
        zoomed = driver.current_url
        driver.find_element(By.ID, "theme-toggle").click()
        wait_until(lambda: driver.execute_script("return document.documentElement.dataset.theme") == "dark", what="dark theme")
        driver.get(driver.current_url)
        wait_until(lambda: loaded(driver, None), timeout=20, what="reload")
        assert driver.execute_script("return document.documentElement.dataset.theme") == "dark"
        assert driver.current_url.split("&theme")[0] == zoomed.split("&theme")[0]
        driver.save_screenshot(os.path.join(shots, "dashboard-dark.png"))

        errors = console_errors(driver)
        assert not errors, f"console errors: {errors}"
        print("dashboard ok")
    finally:
        driver.quit()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
