"""lib/providers/http.py new_session: the environment's proxy settings, read once per host."""

import requests

from execution.lib.providers.http import new_session


def test_proxy_settings_come_from_the_environment_and_are_read_once_per_host(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "graph.example.org")
    reads: list[str] = []
    real = requests.utils.get_environ_proxies

    def counting(url, no_proxy=None):
        reads.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    session = new_session()
    first = session.merge_environment_settings("https://api.example.com/waInstance1/sendMessage/t", {}, None, None, None)
    again = session.merge_environment_settings("https://api.example.com/waInstance1/getStateInstance/t", {},
                                               None, None, None)
    bypassed = session.merge_environment_settings("https://graph.example.org/v21.0/1/messages", {}, None, None, None)
    assert first["proxies"]["https"] == "http://proxy.internal:3128" == again["proxies"]["https"]
    assert "https" not in bypassed["proxies"]                          # NO_PROXY honoured
    assert len(reads) == 2                                             # once per host, not per request
    first["proxies"]["https"] = "changed"                              # a caller's edit does not stick
    assert session.merge_environment_settings("https://api.example.com/x", {}, None, None, None)[
        "proxies"]["https"] == "http://proxy.internal:3128"


def test_explicit_settings_of_a_request_still_win():
    session = new_session()
    merged = session.merge_environment_settings("https://api.example.com/x", {"https": "http://mine:1"},
                                                None, False, None)
    assert merged["proxies"]["https"] == "http://mine:1" and merged["verify"] is False
