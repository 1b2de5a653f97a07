"""The chat page in a real browser: Debian's chromium, headless, driven by
python3-selenium through chromium-driver, against a real percored with
web, chat and irc listeners on 2 workers. A visitor picks a nick, joins a
room, says a line that a chat client and an IRC client see, sees theirs;
a second tab in the room sees both; /me and /msg work; and when the
server restarts the page reconnects and joins its room again.

PC_WEB_SCREENSHOT=path saves a screenshot of the page there (the one in
docs/img/web-chat.png was made so)."""

import os
import shutil
import tempfile
import unittest

from percored import SLOW, Percored
from test_chat import Client as ChatClient
from test_faces import IrcClient

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    HAVE_BROWSER = shutil.which("chromedriver") and shutil.which("chromium")
except ImportError:
    HAVE_BROWSER = False


class Server(Percored):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.clients = []

    def stop(self, timeout=30):
        for sock in self.clients:
            sock.close()
        return super().stop(timeout)


# A stop waits drain_timeout for clients to leave, and a browser keeps its
# page's connection open for keepalive_timeout: both short here.
FAST_STOP = ("--set", "web.flood_rate=0", "--set", "server.drain_timeout=0.5",
             "--set", "web.keepalive_timeout=1")


def start_server(ports=None):
    """web, chat and irc listeners; on given ports (a restart) or free
    ones."""
    if ports is None:
        return Server(*FAST_STOP, listeners=(
            ("web", "web"), ("chat", "chat"), ("irc", "irc")), workers=2)
    srv = Server(*FAST_STOP, *[
        a for name in ("web", "chat", "irc")
        for a in ("--listen", f"{name}={name}@127.0.0.1:{ports[name]}")],
        listeners=(), workers=2)
    srv.ports = dict(ports)
    return srv


@unittest.skipUnless(HAVE_BROWSER, "needs chromium, chromium-driver and "
                     "python3-selenium (deploy/install-deps)")
class ChatPageInChromium(unittest.TestCase):
    def setUp(self):
        self.profile = tempfile.mkdtemp(prefix="pc-chromium-")
        opts = webdriver.ChromeOptions()
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1100,640",
                    "--no-first-run", f"--user-data-dir={self.profile}"):
            opts.add_argument(arg)
        self.driver = webdriver.Chrome(
            service=Service(shutil.which("chromedriver")), options=opts)
        self.driver.set_page_load_timeout(20 * SLOW)

    def tearDown(self):
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)

    def wait(self, what, predicate, timeout=15):
        WebDriverWait(self.driver, timeout * SLOW, poll_frequency=0.05).until(
            lambda d: predicate(), message=what)

    def text(self, element_id):
        return self.driver.find_element(By.ID, element_id).text

    def sees(self, text, element_id="log", timeout=15):
        self.wait(f"{text!r} in #{element_id}",
                  lambda: text in self.text(element_id), timeout)

    def log_in(self, port, nick, room):
        self.driver.get(f"http://127.0.0.1:{port}/")
        self.driver.find_element(By.ID, "nick").send_keys(nick)
        field = self.driver.find_element(By.ID, "room")
        field.clear()
        field.send_keys(room)
        self.driver.find_element(By.ID, "join").click()
        self.sees(nick, "members")

    def say(self, text):
        self.driver.find_element(By.ID, "line").send_keys(text, Keys.ENTER)

    def test_a_visitor_chats_with_chat_and_irc_clients(self):
        srv = start_server().__enter__()
        try:
            self.chat_and_irc_meet_two_tabs(srv)
            srv = self.restart(srv)
        finally:
            srv.__exit__(None, None, None)

    def chat_and_irc_meet_two_tabs(self, srv):
        chat = ChatClient(srv)
        srv.clients.append(chat.sock)
        chat.command("/nick carol", "OK nick carol")
        chat.join("garden")
        irc = IrcClient(srv, "ivan")
        srv.clients.append(irc.sock)
        irc.join("#garden")

        self.log_in(srv.ports["web"], "ann", "garden")
        self.say("hello from the browser")
        chat.expect(r"ann: hello from the browser")
        irc.expect(r":ann!\S+ PRIVMSG #garden :hello from the browser")
        chat.send("hi from chat\n")
        irc.send("PRIVMSG #garden :hi from irc")
        self.sees("hi from chat")
        self.sees("hi from irc")
        self.say("/me waves")
        chat.expect(r"\* ann waves")
        for nick in ("ann", "carol", "ivan"):
            self.sees(nick, "members")

        first = self.driver.current_window_handle
        self.driver.switch_to.new_window("tab")
        self.log_in(srv.ports["web"], "bea", "garden")
        chat.send("second round from chat\n")
        irc.send("PRIVMSG #garden :second round from irc")
        self.sees("second round from chat")
        self.sees("second round from irc")
        self.say("/msg ann just for you")
        self.driver.switch_to.window(first)
        self.sees("bea joined garden")
        self.sees("second round from irc")
        self.sees("bea \u2192 you")
        self.sees("just for you")
        self.sees("bea", "members")
        shot = os.environ.get("PC_WEB_SCREENSHOT")
        if shot:
            self.driver.save_screenshot(shot)
        chat.close()
        self.sees("carol quit")

    def restart(self, srv):
        """The server goes away and comes back on the same ports: the page
        backs off, reconnects, takes its nick and room again."""
        ports = srv.ports
        srv.__exit__(None, None, None)
        self.sees("disconnected", "status")
        srv = start_server(ports).__enter__()
        self.sees("connected", "status", timeout=20)
        self.sees("ann", "members")  # joined again
        chat = ChatClient(srv)
        srv.clients.append(chat.sock)
        chat.join("garden")
        chat.send("welcome back\n")
        self.sees("welcome back", timeout=20)
        self.assertEqual(self.text("who"), "ann")
        return srv


if __name__ == "__main__":
    unittest.main()
