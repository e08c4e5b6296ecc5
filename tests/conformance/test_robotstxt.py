"""robots.txt as the crawler obeys it, black-box through real local servers: cases
ported from protego (github.com/scrapy/protego, tests/test_protego.py @ 81f1b35) and
Google's reference parser (github.com/google/robotstxt, robots_test.cc @ 22b355f),
each citing its test.

Every case is one host (a Site) serving its robots.txt; one crawl per user agent
(``user_agent`` is a crawl setting) visits every path of every case of that agent
with ``obey_robots`` on. A path is *allowed* when the host served it, *disallowed*
when the request went to its errback as kind ``robots`` and never reached the host.

A source's cases are kept as the source states them; where the crawler decides
otherwise on purpose, the (case, path) pair is in ``DEVIATIONS`` with the reason,
and the test asserts our decision.

DEVIATIONS (what we do otherwise, and why):

1. Google ID_Encoding: a URL with raw non-ASCII characters
   (``/foo/bar/ツ``) is matched as its percent-encoded form. Google's matcher expects
   the caller to encode URLs first and refuses the raw form; the crawler sends the
   encoded form on the wire, so that is the URL robots.txt must be read against.
2. Google ID_Encoding: ``Allow: /foo/bar/%62%61%7A`` also allows ``/foo/bar/baz``.
   Google compares octets; protego decodes escapes of unreserved characters, which
   RFC 3986 6.2.2.2 says name the same resource.
3. Google GoogleOnly_AcceptUserAgentUpToFirstSpace and ID_UserAgentValueCaseInsensitive:
   ``User-agent: Foo Bar`` is a group for a crawler whose User-Agent contains
   ``foo bar``, not for ``Foo``. A token with a space is not a valid product token
   (RFC 9309 2.2.1); Google's cut at the first space is its own extension, and it
   would let ``User-agent: Mozilla/5.0 (...)`` lines capture every browser-like agent.
4. Google GoogleOnly_LineTooLong: rule lines are not cut at 16,664 bytes (Google's
   limit); a rule is matched as written.
5. Google's 500 KiB parse limit: rules after the first 500 KiB are still obeyed
   (RFC 9309 2.5 asks crawlers to parse *at least* 500 KiB; reading more is the
   polite side). The body itself is capped by ``max_response_size``.
6. protego test_grouping_unknown_keys: a line with an unknown field
   (``Invalid_directive: ...``) does not end a group of User-agent lines: RFC 9309
   2.2.4 says other records MUST NOT interfere with the parsing of the defined ones,
   as Google's ID_LineSyntax_Groups_OtherRules checks. protego ends the group there;
   ``scraper.robotstxt`` drops such lines before protego parses.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from scraper import Request, Spider

from ..conftest import Reply, Site, crawl

P = "protego tests/test_protego.py"
G = "google/robotstxt robots_test.cc"
RFC = "RFC 9309"

RFC1996_A = """
        # robots.txt for http://www.example.com/

        User-agent: 1bot
        Allow: /tmp
        Disallow: /

        User-agent: 2bot
        Allow: /tmp/
        Disallow: /

        User-agent: 3bot
        Allow: /a%3cd.html
        Disallow: /

        User-agent: 4bot
        Allow: /a%3Cd.html
        Disallow: /

        User-agent: 5bot
        Allow: /a%2fb.html
        Disallow: /

        User-agent: 6bot
        Allow: /a/b.html
        Disallow: /

        User-agent: 7bot
        Allow: /%7ejoe/index.html
        Disallow: /

        User-agent: 8bot
        Allow: /~joe/index.html
        Disallow: /
        """
RFC1996_B = """
        # /robots.txt for http://www.example.org/
        # comments to webmaster@example.org

        User-agent: unhipbot
        Disallow: /

        User-agent: webcrawler
        User-agent: excite
        Disallow:

        User-agent: *
        Disallow: /org/plans.html
        Allow: /org/
        Allow: /serv
        Allow: /~mak
        Disallow: /
        """
RFC1996_B_PATHS = ["/", "/index.html", "/server.html", "/services/fast.html", "/services/slow.html",
                   "/orgo.gif", "/org/about.html", "/org/plans.html", "/%7Ejim/jim.html",
                   "/%7Emak/mak.html"]
RULE_BOTS = """
        # robots.txt for http://www.example.com/

        User-agent: Rule1TestBot
        Disallow:  /foo*

        User-agent: Rule2TestBot
        Disallow:  /foo*/bar.html

        # Disallows anything containing the letter m!
        User-agent: Rule3TestBot
        Disallow:  *m

        User-agent: Rule4TestBot
        Allow:  /foo/bar.html
        Disallow: *

        User-agent: Rule5TestBot
        Disallow:  /foo*/*bar.html

        User-agent: Rule6TestBot
        Allow:  /foo$
        Disallow:  /foo

        # Exercise excessive wildcards
        # https://bitbucket.org/philip_semanchuk/robotexclusionrulesparser/issues/1
        User-agent: Rule7TestBot
        Allow: *****************/****.js

        """
WILDCARDS = """User-agent: first
                     Disallow: /disallowed/*/end$
                     Disallow: /protego*work

                     User-agent: second
                     Allow: /*allowed
                     Disallow: /
                """
GROUPS = ("allow: /foo/bar/\n\nuser-agent: FooBot\ndisallow: /\nallow: /x/\nuser-agent: BarBot\n"
          "disallow: /\nallow: /y/\n\n\nallow: /w/\nuser-agent: BazBot\n\nuser-agent: FooBot\n"
          "allow: /z/\ndisallow: /\n")
UNICODE_A = """
        User-Agent: *
        Disallow: /admin/
        Disallow: /static/
        # taken from https://en.wikipedia.org/robots.txt
        Disallow: /wiki/K%C3%A4ytt%C3%A4j%C3%A4:
        Disallow: /wiki/Käyttäjä:
        Disallow: /wiki/Keskustelu_käyttäjästä:
        User-Agent: UnicödeBöt
        Disallow: /some/randome/page.html"""
UNICODE_B = """
        # robots.txt for http://www.example.com/

        User-Agent: Jävla-Foobot
        Disallow: /

        User-Agent: \u041b\u044c\u0432\u0456\u0432-bot
        Disallow: /totalitarianism/

        """
NO_LEADING_UA = """
        Disallow: /withoutUA
        Allow: /withoutUA/exception
        Crawl-delay: 5.2
        User-Agent: testbot
        Disallow: /withUA
        """
DEFAULT_UA = """
        User-Agent: robot
        Disallow: /ro-bot

        User-Agent: *
        Disallow: /default-UA

        User-Agent: testbot
        Disallow: /testbot
        """
UA_CASE = """
        User-Agent: testbot
        Disallow: /testbot

        User-Agent: *
        Disallow: /default-UA
        """
UA_GROUPING = """
        User-Agent: one
        User-Agent: two
        Disallow: /success
        User-Agent: *
        Disallow: /failure
        """
COMMENTS = """
        # comment 1
        User-Agent: one # comment 2
        # comment 3
        User-Agent: two
        Disallow: /one-two-bot
        # Disallow: /commented
        # comment 4
        User-Agent: *
        Disallow: /default-ua
        """
UNKNOWN_DIRECTIVE = """
        User-Agent: one
        Disallow: /bot-one
        Harry: Potter
        User-Agent: two
        Disallow: /bot-two
        """
MALFORMED_LINE = """
        User-Agent: one
        Disallow: /bot-one
        Harry Potter
        User-Agent: two
        Disallow: /bot-two
        """
UNKNOWN_KEYS = """
        User-agent: abc
        Disallow: /content/2/
        User-agent: *
        Invalid_directive: /gb.html
        Invalid_directive: /content/2/
        User-agent: ia_archiver
        Disallow: /
        """
GENEROSITY = """
        user-agent foobot
        disallow /
        user agent harry potter
        disallow /horcrux
        request rate 1/10s 1820-1940
        """
DIRECTIVE_CASE = """
        USER-AGENT: onebot
        ALLOW: /x
        DISALLOW: /

        user-agent: twobot
        allow: /x
        disallow: /

        uSEr-aGEnT: threeBot
        AlLoW: /x
        DIsALlOw: /
        """
LINE_ENDINGS = {
    "dos": "User-Agent: foo\r\nAllow: /some/path\r\nUser-Agent: bar\r\n\r\n\r\nDisallow: /\r\n",
    "unix": "User-Agent: foo\nAllow: /some/path\nUser-Agent: bar\n\n\nDisallow: /\n",
    "mac": "User-Agent: foo\rAllow: /some/path\rUser-Agent: bar\r\r\rDisallow: /\r",
    "no-final-eol": "User-Agent: foo\nAllow: /some/path\nUser-Agent: bar\n\n\nDisallow: /",
    "mixed": "User-Agent: foo\nAllow: /some/path\r\nUser-Agent: bar\n\r\n\nDisallow: /",
}
FOO_BAR = {"upper": "User-Agent: FOO BAR\nAllow: /x/\nDisallow: /\n",
           "lower": "User-Agent: foo bar\nAllow: /x/\nDisallow: /\n",
           "camel": "User-Agent: FoO bAr\nAllow: /x/\nDisallow: /\n"}
REP_CASE = {"upper": "USER-AGENT: FooBot\nALLOW: /x/\nDISALLOW: /\n",
            "lower": "user-agent: FooBot\nallow: /x/\ndisallow: /\n",
            "camel": "uSeR-aGeNt: FooBot\nAlLoW: /x/\ndIsAlLoW: /\n"}
FISH = ["/fish", "/fish.html", "/fish/salmon.html", "/fishheads", "/fishheads/yummy.html",
        "/fish.html?id=anything"]

# Google GoogleOnly_LineTooLong: 8 * 2083 bytes per line at most
_MAX_LINE = 2083 * 8
LONG_A = "/x/" + "a" * (_MAX_LINE - len("allow: ") + 1 - 3)
LONG_B = "/x/" + "b" * (_MAX_LINE - len("allow: ") + 1 - 3)
LONG_D = "/x/" + "a" * (_MAX_LINE - len("disallow: ") + 1 - 3)
# past Google's 500 KiB: a group that Google never reads
PADDED = "User-agent: *\nDisallow: /early\n" + "# padding\n" * 52_000 + "Disallow: /late\n"

# (id, source, robots.txt body, user agent, allowed paths, disallowed paths)
Case = tuple[str, str, "str | bytes", str, list[str], list[str]]
CASES: list[Case] = [
    # -- protego -------------------------------------------------------------------
    ("p-allowed-1", f"{P} TestProtego.test_allowed",
     "User-agent: * \nDisallow: /disallowed \nAllow: /allowed \nCrawl-delay: 10", "*",
     ["/allowed"], ["/disallowed"]),
    ("p-allowed-2", f"{P} TestProtego.test_allowed",
     "User-agent: * \nDisallow: /d \nCrawl-delay: 10", "*", ["/abc/d"], ["/disallowed"]),
    ("p-malformed-disallow", f"{P} TestProtego.test_malformed_disallow",
     "User-agent: * \nDisallow: /one \nDissallow: /two \nDissalow: /three \nDisalow: /four \n"
     "Diasllow: /five \nDisallaw: /six \n", "*", [],
     ["/one", "/two", "/three", "/four", "/five", "/six"]),
    ("p-length-1", f"{P} TestProtego.test_length_based_precedence",
     "User-agent: * \nDisallow: / \nAllow: /page", "*", ["/page"], ["/elsewhere"]),
    ("p-length-2", f"{P} TestProtego.test_length_based_precedence",
     "user-agent: FooBot\ndisallow: /x/page.html\nallow: /x/\n", "FooBot", [], ["/x/page.html"]),
    ("p-length-3", f"{P} TestProtego.test_length_based_precedence",
     "user-agent: FooBot\nallow: /x/page.html\ndisallow: /x/\n", "FooBot", ["/x/page.html"], ["/x/"]),
    ("p-length-4", f"{P} TestProtego.test_length_based_precedence",
     "user-agent: FooBot\ndisallow: \nallow: \n", "FooBot", ["/x/page.html"], []),
    ("p-length-5", f"{P} TestProtego.test_length_based_precedence",
     "user-agent: FooBot\ndisallow: /\nallow: /\n", "FooBot", ["/x/page.html"], []),
    ("p-length-6", f"{P} TestProtego.test_length_based_precedence",
     "user-agent: FooBot\ndisallow: /x\nallow: /x/\n", "FooBot", ["/x/"], ["/x"]),
    ("p-length-7", f"{P} TestProtego.test_length_based_precedence",
     "user-agent: FooBot\ndisallow: /x/page.html\nallow: /x/page.html\n", "FooBot",
     ["/x/page.html"], []),
    ("p-length-8", f"{P} TestProtego.test_length_based_precedence",
     "user-agent: FooBot\nallow: /page\ndisallow: /*.html\n", "FooBot", ["/page"], ["/page.html"]),
    ("p-length-9", f"{P} TestProtego.test_length_based_precedence",
     "user-agent: FooBot\nallow: /x/page.\ndisallow: /*.html\n", "FooBot",
     ["/x/page.html"], ["/x/y.html"]),
    ("p-length-10", f"{P} TestProtego.test_length_based_precedence",
     "User-agent: *\nDisallow: /x/\nUser-agent: FooBot\nDisallow: /y/\n", "FooBot",
     ["/x/page"], ["/y/page"]),
    ("p-length-11", f"{P} TestProtego.test_length_based_precedence",
     "user-agent: FooBot\nallow: /p\ndisallow: /\n", "FooBot", ["/page"], []),
    ("p-length-12", f"{P} TestProtego.test_length_based_precedence",
     "user-agent: FooBot\nallow: /folder\ndisallow: /folder\n", "FooBot", ["/folder/page"], []),
    ("p-length-13", f"{P} TestProtego.test_length_based_precedence",
     "user-agent: FooBot\ndisallow: /folder\nallow: /folder\n", "FooBot", ["/folder/page"], []),
    ("p-length-14", f"{P} TestProtego.test_length_based_precedence",
     "user-agent: FooBot\nallow: /page\ndisallow: /*.htm\n", "FooBot", [], ["/page.htm"]),
    ("p-length-15", f"{P} TestProtego.test_length_based_precedence",
     "user-agent: FooBot\nallow: /$\ndisallow: /\n", "FooBot", ["/"], ["/page.html"]),
    ("p-escaped-1", f"{P} TestProtego.test_escaped_url",
     "User-agent: * \nDisallow: / \nAllow: /a%3cd.html", "*", ["/a<d.html", "/a%3cd.html"], []),
    ("p-escaped-2", f"{P} TestProtego.test_escaped_url",
     "User-agent: * \nDisallow: / \nAllow: /a%3c*", "*", ["/a<d.html", "/a%3cd.html"], []),
    ("p-unescaped-1", f"{P} TestProtego.test_unescaped_url",
     "User-agent: * \nDisallow: / \nAllow: /a<d.html", "*", ["/a<d.html", "/a%3cd.html"], []),
    ("p-unescaped-2", f"{P} TestProtego.test_unescaped_url",
     "User-agent: * \nDisallow: / \nAllow: /a<*", "*", ["/a<d.html", "/a%3cd.html"], []),
    # the source's URL also has userinfo and a port, which a local Site cannot keep
    ("p-url-parts-1", f"{P} TestProtego.test_url_parts",
     "User-agent: * \nDisallow: /path;params?query \n", "*", [], ["/path;params?query#fragment"]),
    ("p-url-parts-2", f"{P} TestProtego.test_url_parts",
     "User-agent: * \nDisallow: /? \n", "*", ["/"], ["/?query"]),
    ("p-url-parts-3", f"{P} TestProtego.test_url_parts",
     "User-agent: * \nDisallow: /; \n", "*", ["/"], ["/;params"]),
    ("p-empty", f"{P} TestProtego.test_empty_response", "", "*",
     ["/", "/index.html", "/disallowed"], []),
    ("p-empty-chrome", f"{P} TestProtego.test_empty_response", "", "chrome", ["/"], []),
    ("p-wildcards-first", f"{P} TestProtego.test_allowed_wildcards", WILDCARDS, "first",
     ["/disallowed", "/disallowed/xyz/endinglater", "/rotego_does_work", "/protego_does_wor"],
     ["/disallowed/xyz/end", "/disallowed/abc/end", "/protegoworks", "/protego_works",
      "/protego/works", "/protego_does_work"]),
    ("p-wildcards-second", f"{P} TestProtego.test_allowed_wildcards", WILDCARDS, "second",
     ["/allowed", "/is_still_allowed", "/is_allowed_too"], []),
    ("p-rule1", f"{P} TestProtego.test_allowed_wildcards", RULE_BOTS, "Rule1TestBot",
     ["/fo.html"], ["/foo.html", "/food", "/foo/bar.html"]),
    ("p-rule2", f"{P} TestProtego.test_allowed_wildcards", RULE_BOTS, "Rule2TestBot",
     ["/fo.html", "/food/xyz.html"],
     ["/foo/bar.html", "/food/bar.html", "/foo/a/b/c/x/y/z/bar.html"]),
    ("p-rule3", f"{P} TestProtego.test_allowed_wildcards", RULE_BOTS, "Rule3TestBot",
     ["/foo", "/foo/bar.txt"], ["/foo.htm", "/foo.html", "/foom", "/moo", "/foo/bar.html"]),
    ("p-rule4", f"{P} TestProtego.test_allowed_wildcards", RULE_BOTS, "Rule4TestBot",
     ["/foo/bar.html"], ["/fo.html", "/foo.html", "/foo", "/foo/bar.txt"]),
    ("p-rule5", f"{P} TestProtego.test_allowed_wildcards", RULE_BOTS, "Rule5TestBot",
     ["/food/rebarf.html"],
     ["/foo/bar.html", "/food/rebar.html", "/foo/a/b/c/rebar.html", "/foo/a/b/c/bar.html"]),
    ("p-rule6", f"{P} TestProtego.test_allowed_wildcards", RULE_BOTS, "Rule6TestBot",
     ["/foo"], ["/foo/", "/foo/bar.html", "/fooey"]),
    # the source's "xyz/foo.js" has no leading slash: not the path of any URL
    ("p-rule7", f"{P} TestProtego.test_allowed_wildcards", RULE_BOTS, "Rule7TestBot",
     ["/inlife/daily/fashion-20160727/"], []),
    ("p-wildcards-3", f"{P} TestProtego.test_allowed_wildcards",
     "User-agent: FooBot\nDisallow: /foo/bar/quz\nAllow: /foo/*/qux\n", "FooBot",
     ["/foo/quz", "/foo//quz", "/foo/bax/quz"], ["/foo/bar/quz"]),
    ("p-wildcards-4", f"{P} TestProtego.test_allowed_wildcards",
     "User-agent: FooBot\nDisallow: /foo/bar$\nAllow: /foo/bar/qux\n", "FooBot",
     ["/foo/bar/qux", "/foo/bar/", "/foo/bar/baz"], ["/foo/bar"]),
    ("p-unicode-star", f"{P} TestProtego.test_unicode_url_and_useragent", UNICODE_A, "*",
     ["/", "/some/randome/page.html"],
     ["/admin/", "/static/", "/wiki/K%C3%A4ytt%C3%A4j%C3%A4:", "/wiki/Käyttäjä:",
      "/wiki/Keskustelu_k%C3%A4ytt%C3%A4j%C3%A4st%C3%A4:", "/wiki/Keskustelu_käyttäjästä:"]),
    ("p-unicode-bot", f"{P} TestProtego.test_unicode_url_and_useragent", UNICODE_A,
     "UnicödeBöt", ["/admin/"], ["/some/randome/page.html"]),
    ("p-unicode-fanbot", f"{P} TestProtego.test_unicode_url_and_useragent", UNICODE_B,
     "jävla-fanbot", ["/foo/bar.html"], []),
    ("p-unicode-foobot", f"{P} TestProtego.test_unicode_url_and_useragent", UNICODE_B,
     "jävla-foobot", [], ["/foo/bar.html"]),
    ("p-unicode-plain-foobot", f"{P} TestProtego.test_unicode_url_and_useragent", UNICODE_B,
     "foobot", ["/"], []),
    ("p-no-leading-ua-mybot", f"{P} TestProtego.test_no_leading_user_agent", NO_LEADING_UA,
     "mybot", ["/withoutUA", "/withUA"], []),
    ("p-no-leading-ua-testbot", f"{P} TestProtego.test_no_leading_user_agent", NO_LEADING_UA,
     "testbot", ["/withoutUA"], ["/withUA"]),
    ("p-no-leading-ua-star", f"{P} TestProtego.test_no_leading_user_agent", NO_LEADING_UA,
     "*", ["/withoutUA"], []),
    ("p-default-ua-mybot", f"{P} TestProtego.test_default_user_agent", DEFAULT_UA, "mybot",
     [], ["/default-UA"]),
    ("p-default-ua-testbot", f"{P} TestProtego.test_default_user_agent", DEFAULT_UA, "testbot",
     ["/default-UA"], []),
    ("p-default-ua-robot", f"{P} TestProtego.test_default_user_agent", DEFAULT_UA, "robot",
     ["/default-UA"], []),
    *[(f"p-ua-case-{ua}", f"{P} TestProtego.test_user_agent_case_insensitivity", UA_CASE, ua,
       ["/default-UA"], ["/testbot"]) for ua in ("TESTbot", "testbot", "tEStbOt")],
    *[(f"p-ua-grouping-{ua}", f"{P} TestProtego.test_user_agent_grouping", UA_GROUPING, ua,
       ["/failure"], ["/success"]) for ua in ("one", "two")],
    ("p-groups-foobot", f"{P} TestProtego.test_user_agent_grouping", GROUPS, "FooBot",
     ["/x/b", "/z/d"], ["/y/c", "/foo/bar/"]),
    ("p-groups-barbot", f"{P} TestProtego.test_user_agent_grouping", GROUPS, "BarBot",
     ["/y/c", "/w/a"], ["/z/d", "/foo/bar/"]),
    ("p-groups-bazbot", f"{P} TestProtego.test_user_agent_grouping", GROUPS, "BazBot",
     ["/z/d"], ["/foo/bar/"]),
    *[(f"p-comments-{ua}", f"{P} TestProtego.test_comments", COMMENTS, ua,
       ["/commented", "/default-ua"], ["/one-two-bot"]) for ua in ("one", "two")],
    ("p-comments-inline", f"{P} TestProtego.test_comments",
     "User-agent: FooBot\n# Disallow: /\nDisallow: /foo/quz#qux\nAllow: /\n", "FooBot",
     ["/foo/bar"], ["/foo/quz"]),
    ("p-unknown-directive-one", f"{P} TestProtego.test_skip_unknown_directives",
     UNKNOWN_DIRECTIVE, "one", ["/bot-two"], ["/bot-one"]),
    ("p-unknown-directive-two", f"{P} TestProtego.test_skip_unknown_directives",
     UNKNOWN_DIRECTIVE, "two", ["/bot-one"], ["/bot-two"]),
    ("p-malformed-line-one", f"{P} TestProtego.test_skip_malformed_line", MALFORMED_LINE, "one",
     ["/bot-two"], ["/bot-one"]),
    ("p-malformed-line-two", f"{P} TestProtego.test_skip_malformed_line", MALFORMED_LINE, "two",
     ["/bot-one"], ["/bot-two"]),
    *[(f"p-empty-directives-{ua}", f"{P} TestProtego.test_empty_disallow_allow_directives",
       "\n        User-Agent: one\n        Disallow:\n\n        User-Agent: two\n        Allow:\n",
       ua, ["/path1", "/path2"], []) for ua in ("one", "two")],
    ("p-empty-record-group", f"{P} TestProtego.test_empty_record_group",
     "\n        User-Agent: harrybot\n        Disallow: /\n        User-Agent: testbot\n",
     "testbot", ["/path1", "/path2"], []),
    ("p-1994", f"{P} TestProtego.test_1994rfc_example",
     "\n        # robots.txt for http://www.example.com/\n        User-agent: *\n"
     "        Disallow: /cyberworld/map/ # This is an infinite virtual URL space\n"
     "        Disallow: /tmp/ # these will soon disappear\n        Disallow: /foo.html\n",
     "CrunchyFrogBot", ["/", "/foo.htm", "/foo.shtml", "/cyberworld/index.html"],
     ["/foo.html", "/foo.htmlx", "/tmp/foo.html"]),
    ("p-1996-1bot", f"{P} TestProtego.test_1996rfc_examples", RFC1996_A, "1bot",
     ["/tmp.html", "/tmp", "/tmp/a.html"], []),
    ("p-1996-2bot", f"{P} TestProtego.test_1996rfc_examples", RFC1996_A, "2bot",
     ["/tmp/", "/tmp/a.html"], ["/tmp"]),
    ("p-1996-3bot", f"{P} TestProtego.test_1996rfc_examples", RFC1996_A, "3bot",
     ["/a%3cd.html", "/a%3Cd.html"], []),
    ("p-1996-4bot", f"{P} TestProtego.test_1996rfc_examples", RFC1996_A, "4bot",
     ["/a%3cd.html", "/a%3Cd.html"], []),
    ("p-1996-5bot", f"{P} TestProtego.test_1996rfc_examples", RFC1996_A, "5bot",
     ["/a%2fb.html"], ["/a/b.html"]),
    ("p-1996-6bot", f"{P} TestProtego.test_1996rfc_examples", RFC1996_A, "6bot",
     ["/a/b.html"], ["/a%2fb.html"]),
    ("p-1996-7bot", f"{P} TestProtego.test_1996rfc_examples", RFC1996_A, "7bot",
     ["/~joe/index.html"], []),
    ("p-1996-8bot", f"{P} TestProtego.test_1996rfc_examples", RFC1996_A, "8bot",
     ["/%7Ejoe/index.html"], []),
    ("p-1996-unhipbot", f"{P} TestProtego.test_1996rfc_examples", RFC1996_B, "unhipbot",
     [], RFC1996_B_PATHS),
    ("p-1996-webcrawler", f"{P} TestProtego.test_1996rfc_examples", RFC1996_B, "webcrawler",
     RFC1996_B_PATHS, []),
    ("p-1996-excite", f"{P} TestProtego.test_1996rfc_examples", RFC1996_B, "excite",
     RFC1996_B_PATHS, []),
    ("p-1996-otherbot", f"{P} TestProtego.test_1996rfc_examples", RFC1996_B, "OtherBot",
     ["/server.html", "/services/fast.html", "/services/slow.html", "/org/about.html",
      "/%7Emak/mak.html"],
     ["/", "/index.html", "/orgo.gif", "/org/plans.html", "/%7Ejim/jim.html"]),
    ("p-implicit-allow-foobot", f"{P} TestProtego.test_implicit_allow",
     "\n        User-agent: *\n        Disallow:    /\n\n        User-agent: foobot\n"
     "        Disallow:\n", "foobot", ["/", "/bar.html"], []),
    ("p-implicit-allow-other", f"{P} TestProtego.test_implicit_allow",
     "\n        User-agent: *\n        Disallow:    /\n\n        User-agent: foobot\n"
     "        Disallow:\n", "SomeOtherBot", [], ["/", "/blahblahblah"]),
    ("p-unknown-keys-agent", f"{P} TestProtego.test_grouping_unknown_keys", UNKNOWN_KEYS,
     "agent", ["/foo", "/foobar", "/content/2"], []),
    ("p-unknown-keys-ia", f"{P} TestProtego.test_grouping_unknown_keys", UNKNOWN_KEYS,
     "ia_archiver", [], ["/bar", "/foo", "/foobar", "/content/2"]),
    ("p-generosity-incorrect", f"{P} TestProtego.test_generosity",
     "\n        Foo: Foobot\n        Bar: /", "FooBot", ["/x/y"], []),
    ("p-generosity-foobot", f"{P} TestProtego.test_generosity", GENEROSITY, "FooBot",
     [], ["/x/y"]),
    ("p-generosity-harry", f"{P} TestProtego.test_generosity", GENEROSITY, "harry potter",
     ["/abc"], ["/horcrux"]),
    *[(f"p-generosity-wildcard-{ua}", f"{P} TestProtego.test_generosity",
       "\n        user-agent: foo*bot\n        disallow: /myprofile\n", ua, [], ["/myprofile"])
      for ua in ("foo*bot", "foobot")],
    *[(f"p-directive-case-{ua}", f"{P} TestProtego.test_directive_case_insensitivity",
       DIRECTIVE_CASE, ua, ["/x/y"], ["/a/b"]) for ua in ("onebot", "twobot", "threebot")],
    *[(f"p-line-endings-{kind}-{ua}", f"{P} TestProtego.test_line_endings", body, ua,
       ["/some/path/"] if ua == "foo" else [], [] if ua == "foo" else ["/some/path/"])
      for kind, body in LINE_ENDINGS.items() for ua in ("foo", "bar")],
    ("p-index-html", f"{P} TestProtego.test_index_html_is_directory",
     "User-Agent: *\nAllow: /allowed-slash/index.html\nDisallow: /\n", "footbot",
     ["/allowed-slash/", "/allowed-slash/index.html"],
     ["/allowed-slash/index.htm", "/anyother-url"]),
    ("p-percent-1", f"{P} TestProtego.test_percentage_encoding",
     "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar?qux=taz&baz=http://foo.bar?tar&par\n",
     "FooBot", ["/foo/bar?qux=taz&baz=http://foo.bar?tar&par"], []),
    ("p-percent-2", f"{P} TestProtego.test_percentage_encoding",
     "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/ツ\n", "FooBot",
     ["/foo/bar/%E3%83%84", "/foo/bar/ツ"], []),
    ("p-percent-3", f"{P} TestProtego.test_percentage_encoding",
     "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/%E3%83%84\n", "FooBot",
     ["/foo/bar/%E3%83%84", "/foo/bar/ツ"], []),
    ("p-percent-4", f"{P} TestProtego.test_percentage_encoding",
     "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/%62%61%7A\n", "FooBot",
     ["/foo/bar/baz", "/foo/bar/%62%61%7A"], []),
    ("p-url-case-1", f"{P} TestProtego.test_url_case_sensitivity",
     "user-agent: FooBot\ndisallow: /x/\n", "FooBot", [], ["/x/y"]),
    ("p-url-case-2", f"{P} TestProtego.test_url_case_sensitivity",
     "user-agent: FooBot\ndisallow: /X/\n", "FooBot", ["/x/y"], []),
    ("p-nonterminal-dollar", f"{P} TestProtego.test_nonterminal_dollar",
     "user-agent: FooBot\ndisallow: /x$/abc\ndisallow: /y/abc$\ndisallow: /x*x$/abc\n"
     "disallow: /y*y/abc$\n", "FooBot", ["/y/abcdef", "/yabcy/abcdef"],
     ["/x$/abcdef", "/x%24/abcdef", "/y/abc", "/xabcx$/abcdef", "/xabcx%24/abcdef", "/yabcy/abc"]),
    ("p-escaped-special", f"{P} TestProtego.test_escaped_special_symbols",
     "user-agent: FooBot\ndisallow: /x/abc%24\ndisallow: /x%2Ax/abc\n", "FooBot",
     ["/x/abc", "/xabcx/abc"], ["/x/abc$abc", "/x/abc$", "/x*x/abc", "/x*x/abcdef"]),
    ("p-special-dual", f"{P} TestProtego.test_special_symbols_dual_behaviour",
     "user-agent: FooBot\ndisallow: /x/abc$\ndisallow: /x*x/abc\n", "FooBot", [],
     ["/x*x/abc", "/x/abc$", "/x/abc%24"]),
    ("p-absolute-url-rule", f"{P} TestProtego.test_with_absolute_urls",
     "user-agent: *\ndisallow: http://ms-web00.walkerplus.com/\n", "FooBot",
     ["/"], ["/http://ms-web00.walkerplus.com/"]),
    ("p-path-missing", f"{P} TestProtego.test_disallow_target_url_path_is_missing",
     "User-Agent: *\nDisallow: /\n", "FooBot", [], ["/", ""]),
    ("p-double-slash", f"{P} TestProtego.test_leading_double_slash_in_pattern",
     "User-Agent: *\nDisallow: //folder/*\n", "FooBot",
     ["/", "/folder", "/folder/", "/folder/page", "//folder"], ["//folder/page"]),
    ("p-query-wildcard", f"{P} TestProtego.test_disallow_query_wildcard",
     "User-agent: * \nDisallow: /*s=", "*", ["/", "/s/"], ["/?s=asd"]),
    ("p-leading-asterisk-1", f"{P} test_leading_asterisk",
     "User-Agent: *\nallow: */p\ndisallow: /\n", "*", ["/page"], []),
    ("p-leading-asterisk-2", f"{P} test_leading_asterisk",
     "User-Agent: *\nallow: /page\ndisallow: */*.htm\n", "*", [], ["/page.htm"]),
    # -- Google ------------------------------------------------------------------------
    ("g-system-empty", f"{G} GoogleOnly_SystemTest", "", "FooBot", ["/"], []),
    ("g-line-correct", f"{G} ID_LineSyntax_Line", "user-agent: FooBot\ndisallow: /\n", "FooBot",
     [], ["/x/y"]),
    ("g-line-incorrect", f"{G} ID_LineSyntax_Line", "foo: FooBot\nbar: /\n", "FooBot",
     ["/x/y"], []),
    ("g-line-incorrect-accepted", f"{G} ID_LineSyntax_Line", "user-agent FooBot\ndisallow /\n",
     "FooBot", [], ["/x/y"]),
    ("g-groups-foobot", f"{G} ID_LineSyntax_Groups", GROUPS, "FooBot",
     ["/x/b", "/z/d"], ["/y/c", "/foo/bar/"]),
    ("g-groups-barbot", f"{G} ID_LineSyntax_Groups", GROUPS, "BarBot",
     ["/y/c", "/w/a"], ["/z/d", "/foo/bar/"]),
    ("g-groups-bazbot", f"{G} ID_LineSyntax_Groups", GROUPS, "BazBot", ["/z/d"], ["/foo/bar/"]),
    *[(f"g-groups-sitemap-{ua}", f"{G} ID_LineSyntax_Groups_OtherRules",
       "User-agent: BarBot\nSitemap: https://foo.bar/sitemap\nUser-agent: *\nDisallow: /\n", ua,
       [], ["/"]) for ua in ("FooBot", "BarBot")],
    *[(f"g-groups-unknown-{ua}", f"{G} ID_LineSyntax_Groups_OtherRules",
       "User-agent: FooBot\nInvalid-Unknown-Line: unknown\nUser-agent: *\nDisallow: /\n", ua,
       [], ["/"]) for ua in ("FooBot", "BarBot")],
    *[(f"g-rep-case-{kind}", f"{G} ID_REPLineNamesCaseInsensitive", body, "FooBot",
       ["/x/y"], ["/a/b"]) for kind, body in REP_CASE.items()],
    *[(f"g-ua-case-{kind}-{ua}", f"{G} ID_UserAgentValueCaseInsensitive", body, ua,
       ["/x/y"], ["/a/b"]) for kind, body in FOO_BAR.items() for ua in ("Foo", "foo")],
    ("g-ua-first-space-foo", f"{G} GoogleOnly_AcceptUserAgentUpToFirstSpace",
     "User-Agent: *\nDisallow: /\nUser-Agent: Foo Bar\nAllow: /x/\nDisallow: /\n", "Foo",
     ["/x/y"], []),
    ("g-ua-first-space-foo-bar", f"{G} GoogleOnly_AcceptUserAgentUpToFirstSpace",
     "User-Agent: *\nDisallow: /\nUser-Agent: Foo Bar\nAllow: /x/\nDisallow: /\n", "Foo Bar",
     [], ["/x/y"]),
    ("g-global-empty", f"{G} ID_GlobalGroups_Secondary", "", "FooBot", ["/x/y"], []),
    ("g-global-foobot", f"{G} ID_GlobalGroups_Secondary",
     "user-agent: *\nallow: /\nuser-agent: FooBot\ndisallow: /\n", "FooBot", [], ["/x/y"]),
    ("g-global-barbot", f"{G} ID_GlobalGroups_Secondary",
     "user-agent: *\nallow: /\nuser-agent: FooBot\ndisallow: /\n", "BarBot", ["/x/y"], []),
    ("g-global-only-specific", f"{G} ID_GlobalGroups_Secondary",
     "user-agent: FooBot\nallow: /\nuser-agent: BarBot\ndisallow: /\nuser-agent: BazBot\n"
     "disallow: /\n", "QuxBot", ["/x/y"], []),
    ("g-value-case-lower", f"{G} ID_AllowDisallow_Value_CaseSensitive",
     "user-agent: FooBot\ndisallow: /x/\n", "FooBot", [], ["/x/y"]),
    ("g-value-case-upper", f"{G} ID_AllowDisallow_Value_CaseSensitive",
     "user-agent: FooBot\ndisallow: /X/\n", "FooBot", ["/x/y"], []),
    ("g-longest-1", f"{G} ID_LongestMatch",
     "user-agent: FooBot\ndisallow: /x/page.html\nallow: /x/\n", "FooBot", [], ["/x/page.html"]),
    ("g-longest-2", f"{G} ID_LongestMatch",
     "user-agent: FooBot\nallow: /x/page.html\ndisallow: /x/\n", "FooBot",
     ["/x/page.html"], ["/x/"]),
    ("g-longest-3", f"{G} ID_LongestMatch", "user-agent: FooBot\ndisallow: \nallow: \n",
     "FooBot", ["/x/page.html"], []),
    ("g-longest-4", f"{G} ID_LongestMatch", "user-agent: FooBot\ndisallow: /\nallow: /\n",
     "FooBot", ["/x/page.html"], []),
    ("g-longest-5", f"{G} ID_LongestMatch", "user-agent: FooBot\ndisallow: /x\nallow: /x/\n",
     "FooBot", ["/x/"], ["/x"]),
    ("g-longest-6", f"{G} ID_LongestMatch",
     "user-agent: FooBot\ndisallow: /x/page.html\nallow: /x/page.html\n", "FooBot",
     ["/x/page.html"], []),
    ("g-longest-7", f"{G} ID_LongestMatch", "user-agent: FooBot\nallow: /page\ndisallow: /*.html\n",
     "FooBot", ["/page"], ["/page.html"]),
    ("g-longest-8", f"{G} ID_LongestMatch",
     "user-agent: FooBot\nallow: /x/page.\ndisallow: /*.html\n", "FooBot",
     ["/x/page.html"], ["/x/y.html"]),
    ("g-longest-9", f"{G} ID_LongestMatch",
     "User-agent: *\nDisallow: /x/\nUser-agent: FooBot\nDisallow: /y/\n", "FooBot",
     ["/x/page"], ["/y/page"]),
    ("g-encoding-1", f"{G} ID_Encoding",
     "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar?qux=taz&baz=http://foo.bar?tar&par\n",
     "FooBot", ["/foo/bar?qux=taz&baz=http://foo.bar?tar&par"], []),
    ("g-encoding-2", f"{G} ID_Encoding", "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/ツ\n",
     "FooBot", ["/foo/bar/%E3%83%84"], ["/foo/bar/ツ"]),
    ("g-encoding-3", f"{G} ID_Encoding",
     "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/%E3%83%84\n", "FooBot",
     ["/foo/bar/%E3%83%84"], ["/foo/bar/ツ"]),
    ("g-encoding-4", f"{G} ID_Encoding",
     "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/%62%61%7A\n", "FooBot",
     ["/foo/bar/%62%61%7A"], ["/foo/bar/baz"]),
    ("g-special-1", f"{G} ID_SpecialCharacters",
     "User-agent: FooBot\nDisallow: /foo/bar/quz\nAllow: /foo/*/qux\n", "FooBot",
     ["/foo/quz", "/foo//quz", "/foo/bax/quz"], ["/foo/bar/quz"]),
    ("g-special-2", f"{G} ID_SpecialCharacters",
     "User-agent: FooBot\nDisallow: /foo/bar$\nAllow: /foo/bar/qux\n", "FooBot",
     ["/foo/bar/qux", "/foo/bar/", "/foo/bar/baz"], ["/foo/bar"]),
    ("g-special-3", f"{G} ID_SpecialCharacters",
     "User-agent: FooBot\n# Disallow: /\nDisallow: /foo/quz#qux\nAllow: /\n", "FooBot",
     ["/foo/bar"], ["/foo/quz"]),
    ("g-index-html", f"{G} GoogleOnly_IndexHTMLisDirectory",
     "User-Agent: *\nAllow: /allowed-slash/index.html\nDisallow: /\n", "foobot",
     ["/allowed-slash/", "/allowed-slash/index.html"],
     ["/allowed-slash/index.htm", "/anyother-url"]),
    ("g-line-too-long-1", f"{G} GoogleOnly_LineTooLong",
     f"user-agent: FooBot\ndisallow: {LONG_D}/qux\n", "FooBot", ["/fux"], [f"{LONG_D}/fux"]),
    ("g-line-too-long-2", f"{G} GoogleOnly_LineTooLong",
     f"user-agent: FooBot\ndisallow: /\nallow: {LONG_A}/qux\nallow: {LONG_B}/qux\n", "FooBot",
     [f"{LONG_A}/qux", f"{LONG_B}/fux"], ["/"]),
    ("g-doc-fish", f"{G} GoogleOnly_DocumentationChecks",
     "user-agent: FooBot\ndisallow: /\nallow: /fish\n", "FooBot", FISH,
     ["/bar", "/Fish.asp", "/catfish", "/?id=fish"]),
    ("g-doc-fish-star", f"{G} GoogleOnly_DocumentationChecks",
     "user-agent: FooBot\ndisallow: /\nallow: /fish*\n", "FooBot", FISH,
     ["/bar", "/Fish.bar", "/catfish", "/?id=fish"]),
    ("g-doc-fish-slash", f"{G} GoogleOnly_DocumentationChecks",
     "user-agent: FooBot\ndisallow: /\nallow: /fish/\n", "FooBot",
     ["/fish/", "/fish/salmon", "/fish/?salmon", "/fish/salmon.html", "/fish/?id=anything"],
     ["/bar", "/fish", "/fish.html", "/Fish/Salmon.html"]),
    ("g-doc-php", f"{G} GoogleOnly_DocumentationChecks",
     "user-agent: FooBot\ndisallow: /\nallow: /*.php\n", "FooBot",
     ["/filename.php", "/folder/filename.php", "/folder/filename.php?parameters",
      "//folder/any.php.file.html", "/filename.php/", "/index?f=filename.php/"],
     ["/bar", "/php/", "/index?php", "/windows.PHP"]),
    ("g-doc-php-dollar", f"{G} GoogleOnly_DocumentationChecks",
     "user-agent: FooBot\ndisallow: /\nallow: /*.php$\n", "FooBot",
     ["/filename.php", "/folder/filename.php"],
     ["/bar", "/filename.php?parameters", "/filename.php/", "/filename.php5", "/php/",
      "/filename?php", "/aaaphpaaa", "//windows.PHP"]),
    ("g-doc-fish-php", f"{G} GoogleOnly_DocumentationChecks",
     "user-agent: FooBot\ndisallow: /\nallow: /fish*.php\n", "FooBot",
     ["/fish.php", "/fishheads/catfish.php?parameters"], ["/bar", "/Fish.PHP"]),
    ("g-doc-precedence-1", f"{G} GoogleOnly_DocumentationChecks",
     "user-agent: FooBot\nallow: /p\ndisallow: /\n", "FooBot", ["/page"], []),
    ("g-doc-precedence-2", f"{G} GoogleOnly_DocumentationChecks",
     "user-agent: FooBot\nallow: /folder\ndisallow: /folder\n", "FooBot", ["/folder/page"], []),
    ("g-doc-precedence-3", f"{G} GoogleOnly_DocumentationChecks",
     "user-agent: FooBot\nallow: /page\ndisallow: /*.htm\n", "FooBot", [], ["/page.htm"]),
    ("g-doc-precedence-4", f"{G} GoogleOnly_DocumentationChecks",
     "user-agent: FooBot\nallow: /$\ndisallow: /\n", "FooBot", ["/"], ["/page.html"]),
    # ID_LinesNumbersAreCountedCorrectly counts lines; the same files, read for what they
    # mean: foo may fetch /some/path, bar nothing
    *[(f"g-line-endings-{kind}-{ua}", f"{G} ID_LinesNumbersAreCountedCorrectly", body, ua,
       ["/some/path"] if ua == "foo" else [], [] if ua == "foo" else ["/some/path"])
      for kind, body in LINE_ENDINGS.items() for ua in ("foo", "bar")],
    # ID_UTF8ByteOrderMarkIsSkipped counts directives; with Disallow instead of Allow the
    # same files say whether the first line was read
    ("g-bom-full", f"{G} ID_UTF8ByteOrderMarkIsSkipped",
     b"\xef\xbb\xbfUser-Agent: foo\nDisallow: /AnyValue\n", "foo", [], ["/AnyValue"]),
    ("g-bom-partial-2", f"{G} ID_UTF8ByteOrderMarkIsSkipped",
     b"\xef\xbbUser-Agent: foo\nDisallow: /AnyValue\n", "foo", [], ["/AnyValue"]),
    ("g-bom-partial-1", f"{G} ID_UTF8ByteOrderMarkIsSkipped",
     b"\xefUser-Agent: foo\nDisallow: /AnyValue\n", "foo", [], ["/AnyValue"]),
    ("g-bom-broken", f"{G} ID_UTF8ByteOrderMarkIsSkipped",
     b"\xef\x11\xbfUser-Agent: foo\nDisallow: /AnyValue\n", "foo", ["/AnyValue"], []),
    ("g-bom-middle", f"{G} ID_UTF8ByteOrderMarkIsSkipped",
     b"User-Agent: foo\n\xef\xbb\xbfDisallow: /AnyValue\n", "foo", ["/AnyValue"], []),
    # -- RFC 9309 2.5: at least the first 500 KiB are parsed; Google stops there ---------
    ("rfc-500kib", f"{RFC} 2.5 (Google's 500 KiB limit)", PADDED, "FooBot",
     ["/late"], ["/early"]),
]

# (case id, path) -> the deviation of the module docstring that makes us decide otherwise
DEVIATIONS: dict[tuple[str, str], int] = {
    ("g-encoding-2", "/foo/bar/ツ"): 1,
    ("g-encoding-3", "/foo/bar/ツ"): 1,
    ("g-encoding-4", "/foo/bar/baz"): 2,
    **{(f"g-ua-case-{kind}-{ua}", "/a/b"): 3 for kind in FOO_BAR for ua in ("Foo", "foo")},
    ("g-ua-first-space-foo", "/x/y"): 3,
    ("g-ua-first-space-foo-bar", "/x/y"): 3,
    ("g-line-too-long-1", f"{LONG_D}/fux"): 4,
    ("g-line-too-long-2", f"{LONG_B}/fux"): 4,
    ("rfc-500kib", "/late"): 5,
    ("p-unknown-keys-agent", "/foo"): 6,
    ("p-unknown-keys-agent", "/foobar"): 6,
    ("p-unknown-keys-agent", "/content/2"): 6,
}


class RobotsSite(Site):
    """A host serving ``robots`` at /robots.txt and a page at every other path."""

    def __init__(self, robots: str | bytes) -> None:
        super().__init__()
        self.robots = robots

    def answer(self, hit: Any) -> Reply | None:
        if hit.path == "/robots.txt":
            return Reply(self.robots, content_type="text/plain")
        return Reply("ok", content_type="text/plain")


def _close(sites: Iterable[Site]) -> None:
    # each close waits for its server loop to notice (~10 ms): all at once, not in turn
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(Site.close, sites))


def _crawl_agent(agent: str, cases: list[Case]) -> dict[str, dict[str, Any]]:
    """One crawl as ``agent`` over every path of ``cases``, one host per case."""
    sites = {case[0]: RobotsSite(case[2]) for case in cases}
    fetched: dict[str, set[str]] = collections.defaultdict(set)
    refused: dict[str, dict[str, str]] = collections.defaultdict(dict)
    try:
        class Probe(Spider):
            name = "robots-conformance"

            def start_requests(self):
                for case_id, _, _, _, ok, no in cases:
                    for path in ok + no:
                        yield Request(sites[case_id].url + path, dont_filter=True,
                                      meta={"case": case_id, "path": path}, errback=self.failed)

            def parse(self, response):
                fetched[response.request.meta["case"]].add(response.request.meta["path"])
                yield {}

            def failed(self, failure):
                meta = failure.request.meta
                refused[meta["case"]][meta["path"]] = failure.kind

        # Google's long-line cases are 16 KB URLs: over the default max_url_length
        crawl(Probe, {"obey_robots": True, "user_agent": agent, "workers": 8,
                      "max_url_length": 100_000})
        return {case_id: {"fetched": fetched[case_id], "refused": refused[case_id],
                          "robots_hits": site.count("/robots.txt"),
                          "page_hits": len(site.hits) - site.count("/robots.txt")}
                for case_id, site in sites.items()}
    finally:
        _close(sites.values())


@pytest.fixture(scope="module")
def verdicts() -> dict[str, dict[str, Any]]:
    by_agent: dict[str, list[Case]] = collections.defaultdict(list)
    for case in CASES:
        by_agent[case[3]].append(case)
    out: dict[str, dict[str, Any]] = {}
    for agent, cases in by_agent.items():
        out.update(_crawl_agent(agent, cases))
    return out


def _expected(case_id: str, path: str, source_allows: bool) -> bool:
    return source_allows != ((case_id, path) in DEVIATIONS)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_paths_fetched_or_refused_as_robots_txt_says(verdicts, case):
    case_id, source, _, agent, ok, no = case
    got = verdicts[case_id]
    want_fetched = {p for p in ok if _expected(case_id, p, True)} | \
                   {p for p in no if _expected(case_id, p, False)}
    want_refused = set(ok + no) - want_fetched
    assert got["robots_hits"] == 1, source
    assert got["fetched"] == want_fetched, (source, agent)
    assert got["refused"] == {p: "robots" for p in want_refused}, (source, agent)
    # refused paths never reached the host: it served exactly the fetched ones
    assert got["page_hits"] == len(want_fetched), source


def test_every_deviation_names_a_ported_path():
    paths = {(c[0], p) for c in CASES for p in c[4] + c[5]}
    assert set(DEVIATIONS) <= paths


# -- what robots.txt says besides rules ------------------------------------------------
SITEMAP_CASES = [
    # protego TestProtego.test_sitemaps
    ("User-agent: * \nDisallow: /disallowed \nAllow: /allowed \n"
     "Sitemap: https://site.local/sitemap.xml \nAllow: /another_allowed \nUser-agent: testbot \n"
     "Sitemap: https://site.local/sitemap2.xml",
     ["https://site.local/sitemap.xml", "https://site.local/sitemap2.xml"]),
    # protego TestProtego.test_no_sitemaps
    ("User-agent: * \nDisallow: /disallowed \nAllow: /allowed \nCrawl-delay: 10", []),
    # protego TestProtego.test_sitemaps_come_first
    ("Sitemap: https://www.foo.bar/sitmap.xml\nUser-Agent: FootBot\nDisallow: /something",
     ["https://www.foo.bar/sitmap.xml"]),
    # Google ID_NonStandardLineExample_Sitemap: at the end, and anywhere in the file
    ("User-Agent: foo\nAllow: /some/path\nUser-Agent: bar\n\n\nSitemap: http://foo.bar/sitemap.xml\n",
     ["http://foo.bar/sitemap.xml"]),
    ("Sitemap: http://foo.bar/sitemap.xml\nUser-Agent: foo\nAllow: /some/path\nUser-Agent: bar\n\n\n",
     ["http://foo.bar/sitemap.xml"]),
]


def test_sitemap_lines_reach_sitemaps_for():
    sites = [RobotsSite(body) for body, _ in SITEMAP_CASES]
    try:
        class Maps(Spider):
            name = "robots-sitemaps"
            start_urls = [s.url + "/" for s in sites]

            def parse(self, response):
                yield {"url": response.url, "sitemaps": self.sitemaps_for(response.url)}

        _, items = crawl(Maps, {"obey_robots": True})
        got = {i["url"]: i["sitemaps"] for i in items}
        assert [got[s.url + "/"] for s in sites] == [want for _, want in SITEMAP_CASES]
    finally:
        _close(sites)


def test_crawl_delay_of_the_matching_group(sends):
    # protego TestProtego.test_crawl_delay: "*" gets 10 s, testbot 15 s (scaled to 0.3 s
    # and 0.6 s); test_no_leading_user_agent: a Crawl-delay outside any group is ignored
    delays = ("User-agent: * \nDisallow: /disallowed \nAllow: /allowed \nCrawl-delay: 0.3 \n"
              "User-agent: testbot\nCrawl-delay: 0.6 \n")
    for agent, floor in (("testbot", 0.6), ("otherbot", 0.3)):
        site = RobotsSite(delays)
        try:
            class Paced(Spider):
                name = "robots-delay"
                start_urls = [site.url + "/a", site.url + "/b"]

                def parse(self, response):
                    yield {}

            crawl(Paced, {"obey_robots": True, "user_agent": agent})
            pages = sorted(sends.pop(site.url))  # sent times, where the delay is kept
            assert len(pages) == 2 and pages[1] - pages[0] >= floor - 1e-3, agent
        finally:
            site.close()


def test_fields_dropped_before_protego_are_none_it_reads():
    # deviation 6 drops "Field: value" lines whose field protego does not know; if a
    # protego release learns a new single-word field, the list must learn it too
    from protego import _protego

    from scraper.robotstxt import _KNOWN_FIELDS

    assert {d for d in _protego._ALL_DIRECTIVES if " " not in d} <= _KNOWN_FIELDS
