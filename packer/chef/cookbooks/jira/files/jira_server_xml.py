#!/usr/bin/env python3
"""Points Tomcat's HTTP connector in Jira's conf/server.xml at the URL users reach Jira at.

Usage: jira_server_xml.py SERVER_XML PORT [BASE_URL]

Behind a load balancer or proxy Tomcat needs proxyName, proxyPort, scheme and secure on its
connector, or Jira builds links and redirects to http://<host>:8080. From BASE_URL: https sets
scheme="https" secure="true" and port 443 unless the URL names one; http sets secure="false" and
port 80 unless named. Without BASE_URL (or an empty one) the four attributes are removed.

Only the connector whose port is PORT changes, and only those four attributes: the rest of the
file (comments, the commented-out example connectors, formatting) stays byte for byte. The URL is
parsed, and only a validated host name, a port number and fixed words are written, so nothing in
the URL can reach the XML unchecked. Exit status 2 on a bad URL or a server.xml without exactly one
such connector (the file is then left as it was).
"""
import os
import re
import sys
import tempfile
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

ATTRIBUTES = ("proxyName", "proxyPort", "scheme", "secure")
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST = re.compile(rf"^(?=.{{1,253}}$){LABEL}(?:\.{LABEL})*$")
COMMENT = re.compile(r"<!--.*?-->", re.S)
CONNECTOR = re.compile(r"""<Connector\b(?:[^>"']|"[^"]*"|'[^']*')*>""")
PORT_ATTRIBUTE = re.compile(r"""\sport\s*=\s*(?:"([^"]*)"|'([^']*)')""")
PROXY_ATTRIBUTE = re.compile(r"""\s+(?:%s)\s*=\s*(?:"[^"]*"|'[^']*')""" % "|".join(ATTRIBUTES))


class Invalid(Exception):
    pass


def proxy_attributes(base_url):
    """The connector attributes for BASE_URL, in ATTRIBUTES order; {} without one."""
    if not base_url:
        return {}
    try:
        parts = urlsplit(base_url)
    except ValueError as error:
        raise Invalid(f"JIRA_BASE_URL {base_url!r} is not a URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise Invalid(f"JIRA_BASE_URL {base_url!r} must start with http:// or https://")
    if "@" in parts.netloc:
        raise Invalid(f"JIRA_BASE_URL {base_url!r} must not contain a user name or password")
    host = parts.hostname or ""
    if not HOST.match(host):
        raise Invalid(f"JIRA_BASE_URL {base_url!r}: {host!r} is not a DNS name or IPv4 address")
    try:
        port = parts.port
    except ValueError:
        raise Invalid(f"JIRA_BASE_URL {base_url!r}: the port is not a number from 1 to 65535") from None
    if port == 0:
        raise Invalid(f"JIRA_BASE_URL {base_url!r}: the port is not a number from 1 to 65535")
    secure = parts.scheme == "https"
    if port is None:
        port = 443 if secure else 80
    if parts.path not in ("", "/"):
        print(f"jira-proxy: warning: the path {parts.path!r} of JIRA_BASE_URL is not applied: Jira serves at /", file=sys.stderr)
    return {"proxyName": host, "proxyPort": str(port), "scheme": parts.scheme, "secure": "true" if secure else "false"}


def with_proxy(text, port, attributes):
    """TEXT with the proxy attributes of the one live connector on PORT set to ATTRIBUTES."""
    # Comments are blanked (same length) for the search, so that the example connectors Jira ships
    # inside comments are never matched; the edit is then made in the original text.
    searchable = COMMENT.sub(lambda m: " " * len(m.group()), text)
    found = []
    for match in CONNECTOR.finditer(searchable):
        port_match = PORT_ATTRIBUTE.search(match.group())
        found.append((port_match and (port_match.group(1) or port_match.group(2)), match))
    targets = [match for connector_port, match in found if connector_port == str(port)]
    if len(targets) != 1:
        ports = ", ".join(str(p) for p, _ in found) or "none"
        raise Invalid(f"expected one <Connector port=\"{port}\"> outside comments, found {len(targets)} (connector ports: {ports})")
    start, end = targets[0].span()
    tag = PROXY_ATTRIBUTE.sub("", text[start:end])
    close = "/>" if tag.endswith("/>") else ">"
    body = tag[: -len(close)].rstrip()
    added = "".join(f' {name}="{attributes[name]}"' for name in ATTRIBUTES if name in attributes)
    return text[:start] + body + added + close + text[end:]


def check(text, port, attributes):
    """Parses the result and checks the connector carries exactly ATTRIBUTES."""
    connectors = [c for c in ET.fromstring(text.encode()).iter("Connector") if c.get("port") == str(port)]
    actual = {name: connectors[0].get(name) for name in ATTRIBUTES if connectors[0].get(name) is not None}
    if len(connectors) != 1 or actual != attributes:
        raise Invalid(f"server.xml edit check failed: connector {port} has {actual}")


def write_in_place(path, text):
    """Replaces PATH atomically, keeping its mode and owner."""
    info = os.stat(path)
    handle, tmp = tempfile.mkstemp(prefix=".server.xml.", dir=os.path.dirname(path))
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, info.st_mode & 0o7777)
        os.chown(tmp, info.st_uid, info.st_gid)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    path, port, base_url = argv[1], argv[2], (argv[3] if len(argv) == 4 else "")
    try:
        attributes = proxy_attributes(base_url)
        with open(path, encoding="utf-8") as source:
            text = source.read()
        updated = with_proxy(text, port, attributes)
        check(updated, port, attributes)
    except (Invalid, ET.ParseError, OSError) as error:
        print(f"jira-proxy: error: {path}: {error}", file=sys.stderr)
        return 2
    if updated != text:
        write_in_place(path, updated)
    shown = " ".join(f"{k}={v}" for k, v in attributes.items()) or "no proxy attributes (no JIRA_BASE_URL)"
    print(f"jira-proxy: connector {port} in {path}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
