"""endpoint.py: OLLAMA_HOST / OLLAMA_BASE_URL / base_url -> Endpoint, as a table of examples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persona_ollama.endpoint import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    Endpoint,
    parse_host,
    resolve_endpoint,
)
from persona_ollama.errors import ConfigurationError

DEFAULT_URL = "http://127.0.0.1:11434"
ENV_EXAMPLE = "e.g. OLLAMA_HOST=127.0.0.1:11434 or OLLAMA_BASE_URL=http://gpu-box:11434"


def location(endpoint: Endpoint) -> tuple[object, ...]:
    return (
        endpoint.base_url,
        endpoint.scheme,
        endpoint.host,
        endpoint.port,
        endpoint.path_prefix,
        endpoint.is_loopback,
    )


# value -> (base_url, is_loopback, bind_address_mapped, auth)
GOOD = [
    # no scheme: http and Ollama's port
    ("1.2.3.4", "http://1.2.3.4:11434", False, False, None),
    ("example.com", "http://example.com:11434", False, False, None),
    ("gpu_box", "http://gpu_box:11434", False, False, None),
    ("[::1]", "http://[::1]:11434", True, False, None),
    ("::1", "http://[::1]:11434", True, False, None),
    ("2001:db8::1", "http://[2001:db8::1]:11434", False, False, None),
    ("localhost", "http://localhost:11434", True, False, None),
    ("localhost:8080", "http://localhost:8080", True, False, None),
    ("127.0.0.2", "http://127.0.0.2:11434", True, False, None),
    ("api.localhost", "http://api.localhost:11434", True, False, None),
    ("::ffff:127.0.0.1", "http://[::ffff:127.0.0.1]:11434", True, False, None),
    # an explicit scheme brings its own default port
    ("http://1.2.3.4", "http://1.2.3.4:80", False, False, None),
    ("https://1.2.3.4", "https://1.2.3.4:443", False, False, None),
    # envconfig.Host compares the scheme case-sensitively: only "http"/"https" change the port
    ("HTTPS://Example.com", "https://Example.com:11434", False, False, None),
    ("HTTP://gpu-box", "http://gpu-box:11434", False, False, None),
    ("Http://gpu-box:8080", "http://gpu-box:8080", False, False, None),
    ("http://gpu-box:11434", "http://gpu-box:11434", False, False, None),
    ("http://[fe80::1]:8080", "http://[fe80::1]:8080", False, False, None),
    # A localhost name loses its trailing dot (hosts files and Ollama's Host check know only
    # the plain name); an IPv4 address in a short or dotted spelling becomes its dotted quad.
    ("http://localhost.:8080", "http://localhost:8080", True, False, None),
    ("http://api.localhost.:8080", "http://api.localhost:8080", True, False, None),
    ("gpu.example.", "http://gpu.example.:11434", False, False, None),
    ("127.1", "http://127.0.0.1:11434", True, False, None),
    ("127.0.0.1.:9", "http://127.0.0.1:9", True, False, None),
    ("http://0x7f.1", "http://127.0.0.1:80", True, False, None),
    ("localhost.localdomain", "http://localhost.localdomain:11434", True, False, None),
    ("http://h:011434", "http://h:11434", False, False, None),
    ("http://h:1", "http://h:1", False, False, None),
    ("http://h:65535", "http://h:65535", False, False, None),
    # Ollama's special case for its hosted service, and only the exact value
    ("ollama.com", "https://ollama.com:443", False, False, None),
    ("'ollama.com'", "https://ollama.com:443", False, False, None),
    ("ollama.com:11434", "http://ollama.com:11434", False, False, None),
    # bind addresses become loopback for connecting
    (":1234", "http://127.0.0.1:1234", True, True, None),
    ("0.0.0.0", "http://127.0.0.1:11434", True, True, None),
    ("0.0.0.0:8080", "http://127.0.0.1:8080", True, True, None),
    ("http://0.0.0.0:11434", "http://127.0.0.1:11434", True, True, None),
    ("http://:1234", "http://127.0.0.1:1234", True, True, None),
    ("[::]", "http://[::1]:11434", True, True, None),
    ("::", "http://[::1]:11434", True, True, None),
    ("[::]:8080", "http://[::1]:8080", True, True, None),
    ("[0:0:0:0:0:0:0:0]", "http://[::1]:11434", True, True, None),
    # a path prefix (reverse proxy) is kept, trailing slashes are not
    ("https://example.com/ollama/", "https://example.com:443/ollama", False, False, None),
    ("http://proxy:8080/a/b//", "http://proxy:8080/a/b", False, False, None),
    ("example.com/ollama", "http://example.com:11434/ollama", False, False, None),
    ("http://gpu-box:11434/", "http://gpu-box:11434", False, False, None),
    # spaces, then quotes, are trimmed
    ("  http://gpu-box:11434  ", "http://gpu-box:11434", False, False, None),
    ('"http://gpu-box:11434"', "http://gpu-box:11434", False, False, None),
    ("' gpu-box '", "http://gpu-box:11434", False, False, None),
    # credentials become auth and leave the URL
    (
        "http://alice:s3cret@gpu-box:11434",
        "http://gpu-box:11434",
        False,
        False,
        ("alice", "s3cret"),
    ),
    ("alice:s3cret@gpu-box", "http://gpu-box:11434", False, False, ("alice", "s3cret")),
    ("https://alice@gpu-box", "https://gpu-box:443", False, False, ("alice", "")),
    ("https://alice:@gpu-box", "https://gpu-box:443", False, False, ("alice", "")),
    ("http://al%40ice:p%3As%2Fw@gpu-box", "http://gpu-box:80", False, False, ("al@ice", "p:s/w")),
    ("http://alice:p@ss@gpu-box", "http://gpu-box:80", False, False, ("alice", "p@ss")),
    ("http://@gpu-box", "http://gpu-box:80", False, False, None),
    ("alice:s3cret@:1234", "http://127.0.0.1:1234", True, True, ("alice", "s3cret")),
]


# Every case of Ollama's own table tests, envconfig/config_test.go TestHost and
# TestConnectableHost (v0.33.0-rc2; v0.11 lacks only "ollama.com"): the value, what
# envconfig.Host (or ConnectableHost) makes of it, and what we connect to. A None means we
# refuse the value where Ollama quietly repairs it (a bad port becomes the default port); a
# different URL is a bind address we map to loopback, as ConnectableHost does.
ENVCONFIG_CASES = [
    ("", "http://127.0.0.1:11434", None),  # blank counts as unset: resolve_endpoint's default
    ("1.2.3.4", "http://1.2.3.4:11434", "http://1.2.3.4:11434"),
    (":1234", "http://:1234", "http://127.0.0.1:1234"),
    ("1.2.3.4:1234", "http://1.2.3.4:1234", "http://1.2.3.4:1234"),
    ("example.com", "http://example.com:11434", "http://example.com:11434"),
    ("example.com:1234", "http://example.com:1234", "http://example.com:1234"),
    (":0", "http://:0", None),
    (":66000", "http://:11434", None),
    (":-1", "http://:11434", None),
    ("[::1]", "http://[::1]:11434", "http://[::1]:11434"),
    ("[::]", "http://[::]:11434", "http://[::1]:11434"),
    ("::1", "http://[::1]:11434", "http://[::1]:11434"),
    ("[::1]:1337", "http://[::1]:1337", "http://[::1]:1337"),
    (" 1.2.3.4 ", "http://1.2.3.4:11434", "http://1.2.3.4:11434"),
    ('"1.2.3.4"', "http://1.2.3.4:11434", "http://1.2.3.4:11434"),
    (' " 1.2.3.4 " ', "http://1.2.3.4:11434", "http://1.2.3.4:11434"),
    ("'1.2.3.4'", "http://1.2.3.4:11434", "http://1.2.3.4:11434"),
    ("http://1.2.3.4", "http://1.2.3.4:80", "http://1.2.3.4:80"),
    ("http://1.2.3.4:4321", "http://1.2.3.4:4321", "http://1.2.3.4:4321"),
    ("https://1.2.3.4", "https://1.2.3.4:443", "https://1.2.3.4:443"),
    ("https://1.2.3.4:4321", "https://1.2.3.4:4321", "https://1.2.3.4:4321"),
    (
        "https://example.com/ollama",
        "https://example.com:443/ollama",
        "https://example.com:443/ollama",
    ),
    ("ollama.com", "https://ollama.com:443", "https://ollama.com:443"),
    # TestConnectableHost
    ("127.0.0.1", "http://127.0.0.1:11434", "http://127.0.0.1:11434"),
    ("127.0.0.1:1234", "http://127.0.0.1:1234", "http://127.0.0.1:1234"),
    ("0.0.0.0", "http://127.0.0.1:11434", "http://127.0.0.1:11434"),
    ("0.0.0.0:1234", "http://127.0.0.1:1234", "http://127.0.0.1:1234"),
    ("[::]:1234", "http://[::1]:1234", "http://[::1]:1234"),
    ("[::1]:1234", "http://[::1]:1234", "http://[::1]:1234"),
    ("192.168.1.5", "http://192.168.1.5:11434", "http://192.168.1.5:11434"),
    ("192.168.1.5:8080", "http://192.168.1.5:8080", "http://192.168.1.5:8080"),
    ("https://0.0.0.0:4321", "https://127.0.0.1:4321", "https://127.0.0.1:4321"),
]


@pytest.mark.parametrize(("value", "ollama", "ours"), ENVCONFIG_CASES)
def test_every_envconfig_test_case(value: str, ollama: str, ours: str | None) -> None:
    if value.strip(" \"'") == "":
        assert resolve_endpoint(environ={"OLLAMA_HOST": value}).base_url == ollama
    elif ours is None:
        with pytest.raises(ConfigurationError, match="port"):
            parse_host(value, source="OLLAMA_HOST")
    else:
        assert parse_host(value, source="OLLAMA_HOST").base_url == ours
        # Where we connect differs from Ollama's bind address only for 0.0.0.0, [::] and ":port".
        if ours != ollama:
            assert parse_host(value, source="OLLAMA_HOST").bind_address_mapped


@pytest.mark.parametrize(("value", "base_url", "is_loopback", "mapped", "auth"), GOOD)
def test_parse_host_follows_ollama_rules(
    value: str,
    base_url: str,
    is_loopback: bool,
    mapped: bool,
    auth: tuple[str, str] | None,
) -> None:
    endpoint = parse_host(value, source="OLLAMA_HOST")

    assert endpoint.base_url == base_url
    assert endpoint.is_loopback is is_loopback
    assert endpoint.bind_address_mapped is mapped
    assert endpoint.auth == auth
    assert endpoint.source == "OLLAMA_HOST"


def test_parse_host_splits_the_url_into_its_parts() -> None:
    endpoint = parse_host("https://alice:pw@Example.com:8443/ollama/")

    assert endpoint.scheme == "https"
    assert endpoint.host == "Example.com"
    assert endpoint.port == 8443
    assert endpoint.path_prefix == "/ollama"
    assert endpoint.source == "argument"
    assert endpoint.raw == "https://alice:***@Example.com:8443/ollama/"


def test_ipv6_host_is_kept_without_brackets() -> None:
    endpoint = parse_host("[fe80::1]:8080")

    assert endpoint.host == "fe80::1"
    assert endpoint.port == 8080


def test_bind_address_is_mapped_to_loopback() -> None:
    endpoint = parse_host("0.0.0.0:8080", source="OLLAMA_HOST")

    assert endpoint.host == DEFAULT_HOST
    assert endpoint.bind_address_mapped is True
    assert endpoint.raw == "0.0.0.0:8080"


# value -> a piece of the reason
BAD = [
    ("htp://x", "unsupported scheme 'htp'"),
    ("ftp://gpu-box", "unsupported scheme 'ftp'"),
    ("tcp://127.0.0.1:11434", "unsupported scheme 'tcp'"),
    ("://gpu-box", "nothing comes before '://'"),
    ("ht tp://gpu-box", "the scheme is malformed"),
    ("http//localhost", "scheme separator is malformed"),
    ("http:/localhost", "scheme separator is malformed"),
    ("https//gpu-box", "scheme separator is malformed"),
    ("alice:pw@http://gpu-box", "credentials must come after the scheme"),
    ("http://", "the host is missing"),
    ("http:///ollama", "the host is missing"),
    ("http://alice:pw@", "the host is missing"),
    ("gpu-box:", "the port after ':' is empty"),
    ("gpu-box:abc", "the port 'abc' is not a number"),
    ("gpu-box:-1", "the port '-1' is not a number"),
    ("gpu-box:0", "the port 0 is outside 1-65535"),
    ("gpu-box:65536", "the port 65536 is outside 1-65535"),
    ("gpu-box:" + "9" * 5000, "is outside 1-65535"),
    ("my host", "the host 'my host' contains whitespace"),
    ("http://my host:11434", "contains whitespace"),
    ("gpu\tbox", "contains whitespace"),
    ("gpu!box", "contains '!'"),
    ("11434", "looks like a port; write :11434"),
    ("http://gpu-box:11434?x=1", "query string or fragment"),
    ("http://gpu-box/#top", "query string or fragment"),
    ("[::1", "'[' is not closed"),
    ("[gpu-box]:80", "[gpu-box] is not an IPv6 address"),
    ("[::1]x", "unexpected 'x' after the IPv6 address"),
    ("gpu:box:80", "needs brackets"),
    ("fe80::1%eth0", "zone identifiers"),
    ("http://gpu-box/a b", "the path '/a b' contains whitespace"),
    ("http://gpu-box/it's", 'contains "\'"'),
    ("", "it is empty"),
    ("   ", "it is empty"),
    ("''", "it is empty"),
]


@pytest.mark.parametrize(("value", "reason"), BAD)
def test_bad_value_raises_configuration_error_naming_variable_and_example(
    value: str, reason: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_host(value, source="OLLAMA_HOST")

    message = caught.value.message
    shown = value.replace(":pw@", ":***@")
    assert message.startswith(f"OLLAMA_HOST={shown!r} is not a valid Ollama address: ")
    assert reason in message
    assert "Expected host, host:port or http(s)://host:port/path" in message
    assert "[" not in message.split("Expected")[1]  # Rich (Persona's console) reads [..] as markup
    assert ENV_EXAMPLE in message
    assert caught.value.hint == (
        "Correct OLLAMA_HOST in your environment, or unset it to use the default "
        "http://127.0.0.1:11434."
    )
    assert isinstance(caught.value, ValueError)


def test_bad_argument_names_base_url_and_gives_an_argument_example() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_host("htp://x")

    assert caught.value.message.startswith("base_url='htp://x' is not a valid Ollama address")
    assert "e.g. base_url='http://127.0.0.1:11434'" in caught.value.message
    assert caught.value.hint is not None
    assert "leave it out to use OLLAMA_BASE_URL, OLLAMA_HOST" in caught.value.hint


def test_bad_base_url_variable_hint_names_what_takes_over() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_host("htp://x", source="OLLAMA_BASE_URL")

    assert caught.value.message.startswith("OLLAMA_BASE_URL='htp://x'")
    assert caught.value.hint == (
        "Correct OLLAMA_BASE_URL in your environment, or unset it to use OLLAMA_HOST "
        "or the default http://127.0.0.1:11434."
    )


def test_bad_value_from_other_setting_names_that_setting() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_host("htp://x", source="MY_OLLAMA")

    assert caught.value.message.startswith("MY_OLLAMA='htp://x'")
    assert caught.value.hint == "Correct MY_OLLAMA in your environment."


# -- secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "raw"),
    [
        ("http://alice:s3cret@gpu-box:11434", "http://alice:***@gpu-box:11434"),
        ("alice:s3cret@gpu-box", "alice:***@gpu-box"),
        (" 'https://alice:s3cret@gpu-box/ollama' ", " 'https://alice:***@gpu-box/ollama' "),
        ("http://alice:s3c@ret@gpu-box", "http://alice:***@gpu-box"),
        ("https://s3cret@gpu-box", "https://***@gpu-box"),
    ],
)
def test_password_never_shows_in_str_repr_or_raw(value: str, raw: str) -> None:
    endpoint = parse_host(value)

    assert endpoint.raw == raw
    for shown in (str(endpoint), repr(endpoint), endpoint.base_url, endpoint.url("/api/chat")):
        assert "s3c" not in shown
    assert endpoint.auth is not None
    assert "s3c" in "".join(endpoint.auth)


@pytest.mark.parametrize(
    "value",
    [
        "http://alice:s3cret@gpu-box:bad",
        "ftp://alice:s3cret@gpu-box",
        "alice:s3cret@http://gpu-box",
        "http://alice:s3cret@gpu-box/?x=1",
        "http://alice:s3c/ret@gpu box",
        "http://alice:s3c#ret@",
        "https://s3cret@gpu-box:0",
    ],
)
def test_password_never_shows_in_error_messages(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_host(value, source="OLLAMA_BASE_URL")

    for shown in (str(caught.value), repr(caught.value), caught.value.hint or ""):
        assert "s3c" not in shown
    assert "***@" in caught.value.message


# -- url() ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "path", "url"),
    [
        ("127.0.0.1", "/api/chat", "http://127.0.0.1:11434/api/chat"),
        ("127.0.0.1", "api/chat", "http://127.0.0.1:11434/api/chat"),
        ("127.0.0.1", "/", "http://127.0.0.1:11434/"),
        ("https://example.com/ollama/", "/api/chat", "https://example.com:443/ollama/api/chat"),
        ("https://example.com/ollama", "api/tags", "https://example.com:443/ollama/api/tags"),
        ("[::1]:8080", "/api/version", "http://[::1]:8080/api/version"),
    ],
)
def test_url_joins_path_onto_base_url_keeping_prefix(value: str, path: str, url: str) -> None:
    assert parse_host(value).url(path) == url


def test_str_is_the_base_url() -> None:
    endpoint = parse_host("https://example.com/ollama")

    assert str(endpoint) == endpoint.base_url == "https://example.com:443/ollama"


# -- resolve_endpoint -----------------------------------------------------------------------

BOTH = {"OLLAMA_BASE_URL": "http://base-url:1", "OLLAMA_HOST": "ollama-host:2"}


def test_argument_beats_environment() -> None:
    endpoint = resolve_endpoint("http://argument:3", BOTH)

    assert endpoint.base_url == "http://argument:3"
    assert endpoint.source == "argument"


def test_ollama_base_url_beats_ollama_host() -> None:
    endpoint = resolve_endpoint(None, BOTH)

    assert endpoint.base_url == "http://base-url:1"
    assert endpoint.source == "OLLAMA_BASE_URL"


def test_ollama_host_is_used_when_it_is_the_only_setting() -> None:
    endpoint = resolve_endpoint(environ={"OLLAMA_HOST": "ollama-host:2"})

    assert endpoint.base_url == "http://ollama-host:2"
    assert endpoint.source == "OLLAMA_HOST"
    assert endpoint.raw == "ollama-host:2"


def test_default_is_ipv4_loopback_when_nothing_is_set() -> None:
    endpoint = resolve_endpoint(None, {})

    assert endpoint.base_url == DEFAULT_URL == f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    assert endpoint.host == "127.0.0.1"
    assert endpoint.source == "default"
    assert endpoint.raw == ""
    assert endpoint.is_loopback is True
    assert endpoint.bind_address_mapped is False
    assert endpoint.auth is None


@pytest.mark.parametrize("empty", ["", "   ", "''", ' "" '])
def test_empty_values_count_as_unset(empty: str) -> None:
    assert resolve_endpoint(empty, {**BOTH, "OLLAMA_BASE_URL": empty}).source == "OLLAMA_HOST"
    assert resolve_endpoint(empty, {"OLLAMA_HOST": empty}).source == "default"


def test_bad_setting_raises_instead_of_falling_through_to_the_next() -> None:
    with pytest.raises(ConfigurationError, match="OLLAMA_BASE_URL='htp://x'"):
        resolve_endpoint(None, {"OLLAMA_BASE_URL": "htp://x", "OLLAMA_HOST": "gpu-box"})


def test_environ_defaults_to_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_BASE_URL", raising=False)
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:9999")

    endpoint = resolve_endpoint()

    assert endpoint.base_url == "http://127.0.0.1:9999"
    assert endpoint.bind_address_mapped is True


# -- property -------------------------------------------------------------------------------

URL_PIECES = st.lists(
    st.sampled_from(
        [
            "http", "https", "ftp", "://", ":", "/", "@", "[", "]", "::", "%40", "?", "#",
            " ", "'", '"', ".", "0.0.0.0", "127.0.0.1", "localhost", "ollama.com", "gpu-box",
            "fe80::1", "11434", "80", "0", "99999", "alice", "pa:ss", "ollama",
        ]
    ),
    max_size=10,
).map("".join)  # fmt: skip


@settings(max_examples=400, database=None)
@given(st.one_of(st.text(), URL_PIECES))
def test_parse_host_round_trips_or_raises_configuration_error(value: str) -> None:
    try:
        endpoint = parse_host(value)
    except ConfigurationError:
        return

    again = parse_host(endpoint.base_url)

    assert location(again) == location(endpoint)
    assert again.auth is None
    assert again.bind_address_mapped is False


@pytest.mark.parametrize(
    ("spellings", "key"),
    [
        (
            ["http://localhost:8080", "HTTP://LOCALHOST:8080/", "http://LocalHost:8080"],
            "http://localhost:8080",
        ),
        (
            ["http://[::1]:8080", "http://[0:0:0:0:0:0:0:1]:8080", "http://[0::1]:8080"],
            "http://[::1]:8080",
        ),
        (
            ["http://[::ffff:127.0.0.1]:8080", "http://[::FFFF:7f00:1]:8080"],
            "http://[::ffff:127.0.0.1]:8080",
        ),
        (
            ["https://Example.com:8443/ollama/", "https://EXAMPLE.COM:8443/ollama"],
            "https://example.com:8443/ollama",
        ),
    ],
)
def test_every_spelling_of_one_server_has_one_server_key(spellings: list[str], key: str) -> None:
    endpoints = [parse_host(text) for text in spellings]
    assert {endpoint.server_key for endpoint in endpoints} == {key}
    # The address shown and sent stays as the user wrote it.
    assert endpoints[-1].base_url != key


def test_a_path_prefix_and_a_scheme_still_make_another_server() -> None:
    keys = {
        parse_host(text).server_key
        for text in ("http://h:1/a", "http://h:1/A", "https://h:1/a", "http://h:1")
    }
    assert len(keys) == 4
