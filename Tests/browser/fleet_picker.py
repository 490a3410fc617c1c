"""The dashboard's instance picker in a fleet: instances grouped by their agent, an unreachable agent marked.

usage: fleet_picker.py URL INSTANCE AGENT
Checks that INSTANCE is listed under "agent AGENT (unreachable)", and that choosing it draws its charts.
"""
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from common import chromium, console_errors, wait_until


def main(url, instance, agent):
    driver = chromium(1280, 900)
    try:
        driver.get(url + "/?range=1h")
        wait_until(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"), timeout=30, what="the first load")
        groups = {g.get_attribute("label"): [o.get_attribute("value") for o in g.find_elements(By.TAG_NAME, "option")]
                  for g in driver.find_elements(By.CSS_SELECTOR, "#instance-select optgroup")}
        label = f"agent {agent} (unreachable)"
        assert instance in groups.get(label, []), f"{instance} not under '{label}': {groups}"
        Select(driver.find_element(By.ID, "instance-select")).select_by_value(instance)
        wait_until(lambda: f"instance={instance}" in driver.current_url, timeout=10, what="the instance in the URL")
        errors = console_errors(driver)
        assert not errors, f"console errors: {errors}"
        print("fleet picker ok:", groups)
    finally:
        driver.quit()


if __name__ == "__main__":
    main(*sys.argv[1:4])
