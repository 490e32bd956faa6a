"""lxml documents parsed and queried per request, fixed tag names, then dropped."""

from lxml import etree

EXPECTED = {"leak": False}

DOC = b"<feed>" + b"".join(b"<entry><title>t%d</title></entry>" % k for k in range(30)) + b"</feed>"


def step(i: int) -> None:
    root = etree.fromstring(DOC)
    [e.text for e in root.iterfind("entry/title")]
