"""Joins, from a lobby on one instance, a room held by another, through nginx.

usage: join_elsewhere.py URL ROOM_ID HOME_INSTANCE ROOM_INSTANCE
The page starts on HOME_INSTANCE (its LIAPTUI_INSTANCE cookie), finds the room
in the lobby (listed through Redis), clicks Join, and must end up seated in the
room with the cookie switched to ROOM_INSTANCE. Prints 'seated on: ...'.
"""
import sys

from selenium.webdriver.common.by import By

from common import chromium, console_errors, wait_until


def visible(driver, css):
    elements = driver.find_elements(By.CSS_SELECTOR, css)
    return bool(elements) and elements[0].is_displayed()


def main(url, room_id, home, elsewhere):
    driver = chromium()
    try:
        driver.get(url)
        driver.delete_all_cookies()
        driver.add_cookie({"name": "LIAPTUI_INSTANCE", "value": home, "path": "/"})
        driver.get(url)
        wait_until(lambda: "online" in driver.find_element(By.ID, "connection-status").text, what="the lobby socket")
        assert driver.get_cookie("LIAPTUI_INSTANCE")["value"] == home, driver.get_cookies()
        join = wait_until(lambda: driver.find_element(By.CSS_SELECTOR, f'.join-room[data-room="{room_id}"]'), timeout=20,
                          what="the other instance's room in the lobby")
        driver.find_element(By.ID, "player-name").send_keys("Cy")
        join.click()
        wait_until(lambda: visible(driver, "#room-view"), timeout=20, what="the room, after following the redirect")
        wait_until(lambda: any(e.text == "Cy" for e in driver.find_elements(By.CSS_SELECTOR, ".seat .who")), what="Cy seated")
        cookie = driver.get_cookie("LIAPTUI_INSTANCE")["value"]
        assert cookie == elsewhere, f"cookie is {cookie}, expected {elsewhere}"
        errors = [e for e in console_errors(driver) if "WebSocket" not in e.get("message", "")]
        assert not errors, f"console errors: {errors}"
        print(f"seated on: {cookie}")
    finally:
        driver.quit()


if __name__ == "__main__":
    main(*sys.argv[1:5])
