"""Plays a complete game of Liap Tui against three bots through the browser client.

usage: play_vs_bots.py URL SCREENSHOT.png
Exits 0 and prints 'game over: ...' when the page showed the end of the game.
"""
import sys
import time

from selenium.webdriver.common.by import By

from common import chromium, console_errors, wait_until


def visible(driver, css):
    elements = driver.find_elements(By.CSS_SELECTOR, css)
    return bool(elements) and elements[0].is_displayed()


def main(url, screenshot):
    driver = chromium()
    try:
        driver.get(url)
        wait_until(lambda: visible(driver, "#lobby-view"), what="the lobby")
        wait_until(lambda: "online" in driver.find_element(By.ID, "connection-status").text, what="the lobby socket")
        driver.find_element(By.ID, "player-name").send_keys("Zoë O'Neil")
        driver.find_element(By.ID, "create-room").click()
        wait_until(lambda: visible(driver, "#room-view"), what="the room")
        for slot in (2, 3, 4):
            wait_until(lambda: driver.find_element(By.CSS_SELECTOR, f'.seat[data-slot="{slot}"] .add-bot'), what=f"add-bot {slot}").click()
            wait_until(lambda: "bot" in driver.find_element(By.CSS_SELECTOR, f'.seat[data-slot="{slot}"] .tags').text,
                       what=f"a bot in seat {slot}")
        # The name is shown as text, exactly as typed.
        assert driver.find_element(By.CSS_SELECTOR, '.seat[data-slot="1"] .who').text == "Zoë O'Neil"
        start = driver.find_element(By.ID, "start-game")
        wait_until(lambda: start.is_enabled(), what="start enabled")
        start.click()
        wait_until(lambda: visible(driver, "#game-view"), what="the game")

        moves = 0
        deadline = time.time() + 400
        while not visible(driver, "#game-over"):
            if time.time() > deadline:
                driver.save_screenshot(screenshot + ".timeout.png")
                raise AssertionError("the game did not end in time; page:\n" + driver.find_element(By.TAG_NAME, "main").text[:3000])
            sequence = driver.find_element(By.TAG_NAME, "body").get_attribute("data-sequence")
            acted = False
            if visible(driver, "#redeal-prompt"):
                driver.find_element(By.ID, "decline-redeal").click()
                acted = True
            elif visible(driver, "#declare-prompt"):
                options = [b for b in driver.find_elements(By.CSS_SELECTOR, "#declare-options button") if b.is_enabled()]
                options[min(1, len(options) - 1)].click()
                acted = True
            elif visible(driver, "#play-prompt"):
                hint = driver.find_element(By.ID, "play-hint").text
                need = int(hint.split()[2]) if hint.startswith("Play exactly") else 1
                for piece in driver.find_elements(By.CSS_SELECTOR, "#hand .piece")[:need]:
                    piece.click()
                driver.find_element(By.ID, "play-selected").click()
                acted = True
            if acted:
                moves += 1
                wait_until(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-sequence") != sequence
                           or visible(driver, "#game-over"), timeout=10, what="the move to land")
            else:
                time.sleep(0.05)

        title = driver.find_element(By.ID, "game-over-title").text
        rounds = driver.find_elements(By.CSS_SELECTOR, "#round-results tbody tr")
        assert title, "no game-over message"
        assert len(rounds) >= 1, "no scores by round"
        assert moves >= 9, f"only {moves} moves were made through the page"
        driver.save_screenshot(screenshot)
        errors = console_errors(driver)
        assert not errors, f"console errors: {errors}"
        print(f"game over: {title} ({len(rounds)} rounds, {moves} moves)")
    finally:
        driver.quit()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
