"""Finding spiders: in a directory or an importable package, duplicate names, modules
that fail to import, and the `list` command; spider classes checked before a crawl."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scraper.exceptions import ConfigError, SpiderError, SpiderNotFound
from scraper.loader import find_spiders, import_object, load_spider

from .conftest import ROOT, run_cli, write_project


def spider_src(cls: str, name: str, extra: str = "") -> str:
    return (f"from scraper import Spider\n\n\nclass {cls}(Spider):\n    name = {name!r}\n"
            f"    start_urls = []\n{extra}\n")


@pytest.fixture
def isolated_imports() -> Iterator[None]:
    """Undo what importing user spiders does to sys.path and sys.modules."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def unique(prefix: str = "spiders") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def make_dir(base: Path, name: str, modules: dict[str, str], package: bool = False) -> Path:
    d = base / name
    d.mkdir(parents=True)
    if package:
        (d / "__init__.py").write_text("")
    for mod, src in modules.items():
        (d / f"{mod}.py").write_text(src)
    return d


def project(tmp_path: Path, spiders: dict[str, str], config: str | None = None) -> Path:
    return write_project(tmp_path, spiders, config)


# -- finding spiders -----------------------------------------------------------------
def test_spiders_found_in_a_directory_by_name(tmp_path, isolated_imports):
    name = unique()
    make_dir(tmp_path, name, {"books": spider_src("BooksSpider", "books"),
                              "news": spider_src("NewsSpider", "news") + spider_src("Other", "aaa")})
    found = find_spiders(name, tmp_path)
    assert list(found) == ["aaa", "books", "news"]  # sorted by name
    assert found["books"].__name__ == "BooksSpider" and found["news"].__name__ == "NewsSpider"


def test_a_directory_without_init_py_works(tmp_path, isolated_imports):
    name = unique()
    make_dir(tmp_path, name, {"a": spider_src("A", "a")})
    assert list(find_spiders(name, tmp_path)) == ["a"]


def test_spiders_path_is_relative_to_base_dir_not_the_working_directory(tmp_path, isolated_imports,
                                                                         monkeypatch):
    name = unique()
    make_dir(tmp_path / "proj", name, {"a": spider_src("A", "a")})
    monkeypatch.chdir(tmp_path)
    assert list(find_spiders(name, tmp_path / "proj")) == ["a"]


def test_classes_without_a_name_and_imported_spiders_are_skipped(tmp_path, isolated_imports):
    name = unique()
    make_dir(tmp_path, name, {
        "base": "from scraper import Spider\n\n\nclass Base(Spider):\n    pass\n",
        "concrete": f"from {name}.base import Base\n\n\nclass Concrete(Base):\n    name = 'concrete'\n",
        "reexport": f"from {name}.concrete import Concrete  # noqa\n",
        "helpers": "def util():\n    return 1\n\nclass NotASpider:\n    name = 'nope'\n",
    }, package=True)
    assert list(find_spiders(name, tmp_path)) == ["concrete"]


def test_non_module_files_are_ignored(tmp_path, isolated_imports):
    name = unique()
    d = make_dir(tmp_path, name, {"a": spider_src("A", "a")})
    (d / "notes.txt").write_text("class X(Spider): name = 'x'")
    (d / ".#a.py").write_text("this is an editor lock file, not Python")
    assert list(find_spiders(name, tmp_path)) == ["a"]


def test_spiders_found_in_an_importable_package(tmp_path, isolated_imports):
    pkg = unique("pkg")
    make_dir(tmp_path / "lib", pkg, {}, package=True)
    make_dir(tmp_path / "lib" / pkg, "crawlers", {"one": spider_src("One", "one")}, package=True)
    make_dir(tmp_path / "lib" / pkg / "crawlers", "nested", {"two": spider_src("Two", "two")},
             package=True)
    sys.path.insert(0, str(tmp_path / "lib"))
    found = find_spiders(f"{pkg}.crawlers", tmp_path / "elsewhere")
    assert list(found) == ["one", "two"]


def test_spiders_path_neither_directory_nor_package_is_a_config_error(tmp_path, isolated_imports):
    with pytest.raises(ConfigError, match="no_such_spiders_xyz") as info:
        find_spiders("no_such_spiders_xyz", tmp_path)
    assert "no such directory" in str(info.value)


def test_spiders_directory_name_must_be_an_identifier(tmp_path, isolated_imports):
    make_dir(tmp_path, "my-spiders", {"a": spider_src("A", "a")})
    with pytest.raises(ConfigError, match="my-spiders"):
        find_spiders("my-spiders", tmp_path)


def test_duplicate_names_are_an_error_naming_both_classes(tmp_path, isolated_imports):
    name = unique()
    make_dir(tmp_path, name, {"first": spider_src("FirstBooks", "books"),
                              "second": spider_src("SecondBooks", "books")})
    with pytest.raises(SpiderError) as info:
        find_spiders(name, tmp_path)
    msg = str(info.value)
    assert "'books'" in msg
    assert f"{name}.first.FirstBooks" in msg and f"{name}.second.SecondBooks" in msg


def test_a_name_that_is_not_a_string_is_an_error(tmp_path, isolated_imports):
    name = unique()
    make_dir(tmp_path, name, {"a": "from scraper import Spider\n\nclass A(Spider):\n    name = 3\n"})
    with pytest.raises(SpiderError, match="A: name must be a string"):
        find_spiders(name, tmp_path)


def test_syntax_error_names_the_file_and_line(tmp_path, isolated_imports):
    name = unique()
    d = make_dir(tmp_path, name, {"good": spider_src("Good", "good"),
                                  "broken": "from scraper import Spider\n\nclass B(Spider)\n    name = 'b'\n"})
    with pytest.raises(SpiderError) as info:
        find_spiders(name, tmp_path)
    msg = str(info.value)
    assert str(d / "broken.py") in msg and ":3:" in msg and "SyntaxError" in msg
    assert "\n" not in msg


def test_a_module_failing_at_import_names_the_file_and_the_exception(tmp_path, isolated_imports):
    name = unique()
    d = make_dir(tmp_path, name, {"bad": "import no_such_module_for_spiders\n"})
    with pytest.raises(SpiderError) as info:
        find_spiders(name, tmp_path)
    msg = str(info.value)
    assert str(d / "bad.py") in msg and "ModuleNotFoundError" in msg and "no_such_module_for_spiders" in msg


def test_load_spider_unknown_name_lists_the_known_ones(tmp_path, isolated_imports):
    name = unique()
    make_dir(tmp_path, name, {"a": spider_src("A", "alpha") + spider_src("B", "beta")})
    assert load_spider("beta", name, tmp_path).__name__ == "B"
    with pytest.raises(SpiderNotFound, match=r"unknown spider 'gamma' \(known: alpha, beta\)"):
        load_spider("gamma", name, tmp_path)


def test_spiders_in_a_subpackage_of_the_spiders_directory_are_found(tmp_path, isolated_imports):
    name = unique()
    d = make_dir(tmp_path, name, {"top": spider_src("Top", "top")}, package=True)
    make_dir(d, "news", {"deep": spider_src("Deep", "deep")}, package=True)
    assert list(find_spiders(name, tmp_path)) == ["deep", "top"]


def test_import_object_errors_name_what_and_the_path():
    assert import_object("json.dumps", "pipeline").__name__ == "dumps"
    with pytest.raises(ConfigError, match=r"pipeline 'nodots': expected a dotted path"):
        import_object("nodots", "pipeline")
    with pytest.raises(ConfigError, match=r"pipeline 'no_such_mod_x\.P': cannot import 'no_such_mod_x'"):
        import_object("no_such_mod_x.P", "pipeline")
    with pytest.raises(ConfigError, match=r"pipeline 'json\.Nope': json has no 'Nope'"):
        import_object("json.Nope", "pipeline")


# -- the command line ------------------------------------------------------------------
def test_cli_list_prints_names_only_one_a_line(tmp_path):
    p = project(tmp_path, {"b": spider_src("B", "bravo"),
                           "a": spider_src("A", "alpha")}, "log_level: DEBUG\n")
    r = run_cli("list", cwd=p)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "alpha\nbravo\n"


def test_cli_list_with_no_spiders_prints_nothing(tmp_path):
    p = project(tmp_path, {"empty": "x = 1\n"})
    r = run_cli("list", cwd=p)
    assert (r.returncode, r.stdout) == (0, "")


def test_cli_list_from_an_importable_package(tmp_path):
    pkg = unique("pkg")
    make_dir(tmp_path / "lib", pkg, {"s": spider_src("S", "from-package")}, package=True)
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "config.yaml").write_text(f"spiders_path: {pkg}\n")
    r = run_cli("list", cwd=tmp_path / "proj", env={"PYTHONPATH": f"{ROOT}:{tmp_path / 'lib'}"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from-package\n"


def test_cli_duplicate_names_exit_2_naming_both_classes(tmp_path):
    p = project(tmp_path, {"one": spider_src("One", "same"), "two": spider_src("Two", "same")})
    r = run_cli("list", cwd=p)
    assert r.returncode == 2 and r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert "spiders.one.One" in line and "spiders.two.Two" in line and "'same'" in line


def test_cli_syntax_error_is_one_line_naming_the_file(tmp_path):
    p = project(tmp_path, {"ok": spider_src("Ok", "ok"), "broken": "def f(:\n    pass\n"})
    for args in (("list",), ("run", "ok")):
        r = run_cli(*args, cwd=p)
        assert r.returncode == 2 and r.stdout == ""
        (line,) = r.stderr.splitlines()
        assert "broken.py:1" in line and "SyntaxError" in line and "Traceback" not in r.stderr


def test_cli_unknown_spider_lists_known_names(tmp_path):
    p = project(tmp_path, {"a": spider_src("A", "alpha") + spider_src("B", "beta")})
    r = run_cli("run", "gamma", cwd=p)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == ["scraper: error: unknown spider 'gamma' (known: alpha, beta)"]


@pytest.mark.parametrize("attr, value, culprit", [
    ("start_urls", ["example.com/page"], "'example.com/page'"),
    ("start_urls", ["/relative"], "'/relative'"),
    ("start_urls", ["ftp://example.com/"], "'ftp://example.com/'"),
    ("start_urls", "http://example.com/", "must be a list"),
    ("start_urls", ["http://example.com/", None], "start_urls[1]"),
    ("allowed_domains", ["http://example.com/"], "'http://example.com/'"),
    ("allowed_domains", "example.com", "must be a list"),
    # issue 12: a port filtered everything silently (0 pages, exit 0)
    ("allowed_domains", ["127.0.0.1:8765"], "without a scheme, port or path"),
])
def test_cli_spider_with_bad_attributes_is_exit_2_naming_it(tmp_path, attr, value, culprit):
    src = ("from scraper import Spider\n\n\nclass Bad(Spider):\n    name = 'bad'\n"
           f"    {attr} = {value!r}\n\n    def parse(self, response):\n        yield {{}}\n")
    p = project(tmp_path, {"bad": src})
    r = run_cli("run", "bad", cwd=p)
    assert r.returncode == 2 and r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert "spider bad" in line and attr in line and culprit in line


def test_project_spiders_dir_is_not_shadowed_by_another_spiders_package(tmp_path):
    # run_cli puts the repository root on PYTHONPATH, and the repository has its own spiders/
    assert (ROOT / "spiders" / "__init__.py").is_file()
    p = write_project(tmp_path, {"mine": spider_src("Mine", "mine")})
    r = run_cli("list", cwd=p)
    assert (r.returncode, r.stdout) == (0, "mine\n"), r.stderr


def test_a_start_urls_argument_is_one_url_or_a_comma_separated_list(tmp_path, site):
    # issue 12: -a start_urls=URL iterated the string's characters (exit 0, no page)
    site.route("/a", "<p>a</p>")
    site.route("/b", "<p>b</p>")
    src = ("from scraper import Spider\n\n\nclass Args(Spider):\n    name = 'args'\n\n"
           "    def parse(self, response):\n        yield {'url': response.url}\n")
    p = project(tmp_path, {"args": src})
    r = run_cli("run", "args", "-a", f"start_urls={site.url}/a", "-o", "-",
                "-s", "obey_robots=false", cwd=p)
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["url"] for line in r.stdout.splitlines()] == [f"{site.url}/a"]
    r = run_cli("run", "args", "-a", f"start_urls={site.url}/a, {site.url}/b", "-o", "-",
                "-s", "obey_robots=false", cwd=p)
    assert sorted(json.loads(line)["url"] for line in r.stdout.splitlines()) == [
        f"{site.url}/a", f"{site.url}/b"]
    r = run_cli("run", "args", "-a", "start_urls=example.com/x", cwd=p)
    assert r.returncode == 2 and "start_urls[0] 'example.com/x'" in r.stderr
