"""The view `scripts/run --demo` links to: data on the charts within the first minute, refreshed on its own.

usage: demo_view.py URL   (the agent's base URL with the demo link's query, e.g. http://127.0.0.1:5051/?range=1h&refresh=10)
"""
import sys

from selenium.webdriver.common.by import By

from common import chromium, console_errors, wait_until

DRAWN = "return [...document.querySelectorAll('.panel canvas')].map(c => Number(c.dataset.points || 0))"


def loaded(driver, previous):
    value = driver.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")
    return value if value and value != previous else None


def main(url):
    driver = chromium(1280, 900)
    try:
        driver.get(url)
        first = wait_until(lambda: loaded(driver, None), timeout=30, what="the first load")
        points = driver.execute_script(DRAWN)
        assert points and max(points) > 0, f"no data drawn: {points}"
        # The page refreshes itself: a new load without anyone touching it.
        wait_until(lambda: loaded(driver, first), timeout=40, what="an automatic refresh")
        errors = console_errors(driver)
        assert not errors, f"console errors: {errors}"
        print("demo view ok:", points)
    finally:
        driver.quit()


if __name__ == "__main__":
    main(sys.argv[1])
