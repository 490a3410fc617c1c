"""The browser client's turn timer and player IDs: the page counts down the player's move,
shows that a bot stands in when the time runs out, and gives the seat back on "I'm back".

usage: turn_timer.py URL          (the server runs with a short --turn-timeout)
Exits 0 and prints 'turn timer: ...' when every step held.
"""
import json
import sys

from selenium.webdriver.common.by import By

from common import chromium, console_errors, wait_until


def visible(driver, css):
    elements = driver.find_elements(By.CSS_SELECTOR, css)
    return bool(elements) and elements[0].is_displayed()


def main(url):
    driver = chromium()
    try:
        driver.get(url)
        wait_until(lambda: "online" in driver.find_element(By.ID, "connection-status").text, what="the lobby socket")
        driver.find_element(By.ID, "player-name").send_keys("Kim")
        driver.find_element(By.ID, "create-room").click()
        wait_until(lambda: visible(driver, "#room-view"), what="the room")
        for slot in (2, 3, 4):
            wait_until(lambda: driver.find_element(By.CSS_SELECTOR, f'.seat[data-slot="{slot}"] .add-bot'), what=f"add-bot {slot}").click()
            wait_until(lambda: "bot" in driver.find_element(By.CSS_SELECTOR, f'.seat[data-slot="{slot}"] .tags').text,
                       what=f"a bot in seat {slot}")
        session = json.loads(driver.execute_script("return localStorage.getItem('liaptui.session')"))
        my_id = session["player_id"]
        assert my_id.startswith("p_"), session
        assert driver.find_element(By.CSS_SELECTOR, '.seat[data-slot="1"]').get_attribute("data-player-id") == my_id
        driver.find_element(By.ID, "start-game").click()
        wait_until(lambda: visible(driver, "#game-view"), what="the game")

        # The page counts down our move and never makes it.
        wait_until(lambda: "left for your move" in driver.find_element(By.ID, "turn-timer").text, timeout=60, what="our move's timer")
        first = int(driver.find_element(By.ID, "turn-timer").get_attribute("data-seconds"))
        assert 1 <= first <= 5, first
        wait_until(lambda: int(driver.find_element(By.ID, "turn-timer").get_attribute("data-seconds") or 99) < first,
                   timeout=5, what="the countdown to move")
        rows = driver.find_elements(By.CSS_SELECTOR, "#players tbody tr")
        ids = [row.get_attribute("data-player-id") for row in rows]
        assert len(set(ids)) == 4 and all(i.startswith("p_") for i in ids), ids
        me = driver.find_element(By.CSS_SELECTOR, "#players tbody tr.me")
        assert me.get_attribute("data-player-id") == my_id

        # Time runs out: the notice shows, and our row says a bot stands in for us.
        wait_until(lambda: visible(driver, "#away-notice"), timeout=30, what="the away notice")
        wait_until(lambda: "bot stands in" in driver.find_element(By.CSS_SELECTOR, "#players tbody tr.me").text,
                   what="our row to show the stand-in")
        # "I'm back" takes the seat back.
        driver.find_element(By.ID, "resume").click()
        wait_until(lambda: not visible(driver, "#away-notice")
                   and "bot stands in" not in driver.find_element(By.CSS_SELECTOR, "#players tbody tr.me").text,
                   what="the seat to be ours again")
        errors = console_errors(driver)
        assert not errors, f"console errors: {errors}"
        print(f"turn timer: counted down from {first} s, timed out, resumed as {my_id}")
    finally:
        driver.quit()


if __name__ == "__main__":
    main(sys.argv[1])
