"""A PEP 503 index for image builds, served on the Docker bridge: this machine's local package
folders first, then PyPI, so that builds take torch (several GB with its CUDA libraries)
from disk instead of downloading it, and everything else from PyPI as usual.

The local folders are the ones pip is configured with here (``pip config list``:
``file://`` extra index URLs and ``find-links`` folders). ``/simple/<project>/`` lists the
project's local files, then PyPI's files of the same project except those with a local
copy (PyPI's anchors are relayed as they are: absolute links, hashes, requires-python);
``/files/<n>/<name>`` serves a file of local folder ``n``. PyPI's files go through this
server too (``/pypi-files/<path>``, kept in ``cache_dir`` when one is given): the build
containers need no route to PyPI or trust in a TLS proxy's certificate, and a second build
downloads nothing again.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import tempfile
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

_HREF = re.compile(r'<a\s+href="([^"]+)"[^>]*>([^<]+)</a>', re.I)
_ANCHOR = re.compile(r"<a\s[^>]*>([^<]+)</a>", re.I)
PYPI = "https://pypi.org/simple"
PYPI_FILES = "https://files.pythonhosted.org/"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_of(filename: str) -> str:
    # wheel: name-version-...; sdist: name-version.tar.gz
    return normalize(filename.split("-", 1)[0])


def pip_local_sources() -> tuple[list[Path], list[Path]]:
    """(simple index folders, flat find-links folders) from pip's configuration."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    indexes: list[Path] = []
    flat: list[Path] = []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        value = value.strip().strip("'\"")
        for item in value.split():
            path = Path(unquote(urlparse(item).path)) if item.startswith("file://") else None
            if key.endswith("index-url") and path is not None and path.is_dir():
                indexes.append(path)
            elif key.endswith("find-links"):
                folder = path or Path(item)
                if folder.is_dir():
                    flat.append(folder)
    return list(dict.fromkeys(indexes)), list(dict.fromkeys(flat))


class LocalIndex:
    """Files of the local folders by project: {project: [(folder number, path, fragment)]}."""

    def __init__(self, indexes: list[Path], flat: list[Path]) -> None:
        self.roots: list[Path] = []
        self.files: dict[str, list[tuple[int, Path, str]]] = {}
        self.indexes, self.flat = indexes, flat
        self.pypi: dict[str, list[tuple[str, str]]] = {}

    def lookup(self, project: str) -> list[tuple[int, Path, str]]:
        project = normalize(project)
        if project in self.files:
            return self.files[project]
        found: list[tuple[int, Path, str]] = []
        for simple in self.indexes:
            page = simple / project / "index.html"
            if not page.is_file():
                continue
            for href, _text in _HREF.findall(page.read_text(errors="replace")):
                target, _, fragment = html.unescape(href).partition("#")
                path = (page.parent / unquote(target)).resolve()
                if path.is_file():
                    found.append((self._root(path.parent), path, fragment))
        for folder in self.flat:
            for path in folder.iterdir():
                if path.is_file() and _project_of(path.name) == project:
                    found.append((self._root(path.parent), path, ""))
        self.files[project] = found
        return found

    def remote(self, project: str) -> list[tuple[str, str]]:
        """PyPI's anchors of ``project`` as (filename, anchor HTML); [] if PyPI fails."""
        project = normalize(project)
        if project not in self.pypi:
            request = urllib.request.Request(f"{PYPI}/{project}/", headers={"Accept": "text/html"})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    page = response.read().decode("utf-8", "replace")
            except OSError:
                return []
            self.pypi[project] = [
                (html.unescape(m.group(1)).strip(), m.group(0).replace(PYPI_FILES, "/pypi-files/"))
                for m in _ANCHOR.finditer(page)
            ]
        return self.pypi[project]

    def _root(self, folder: Path) -> int:
        if folder not in self.roots:
            self.roots.append(folder)
        return self.roots.index(folder)


def _fetch(url: str, target: Path) -> None:
    """Download ``url`` into ``target`` (written whole, then renamed: never half a file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.{threading.get_ident()}.part")
    with urllib.request.urlopen(url, timeout=120) as response, part.open("wb") as f:
        while chunk := response.read(1 << 20):
            f.write(chunk)
    part.replace(target)


def serve(host: str, port: int, cache_dir: Path | None = None) -> tuple[ThreadingHTTPServer, str]:
    """Start the index on ``host:port`` in a daemon thread; returns (server, simple URL)."""
    index = LocalIndex(*pip_local_sources())
    cache = cache_dir or Path(tempfile.mkdtemp(prefix="hprobust-pypi-"))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = [unquote(p) for p in urlparse(self.path).path.split("/") if p]
            if len(parts) == 2 and parts[0] == "simple":
                local = index.lookup(parts[1])
                names = {p.name for _n, p, _f in local}
                links = "".join(
                    f'<a href="/files/{n}/{html.escape(p.name)}'
                    f'{"#" + fragment if fragment else ""}">{html.escape(p.name)}</a>\n'
                    for n, p, fragment in local
                ) + "".join(
                    anchor + "\n" for name, anchor in index.remote(parts[1]) if name not in names
                )
                if not links:
                    self.send_error(404)
                    return
                body = f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            path: Path | None = None
            if len(parts) == 3 and parts[0] == "files" and parts[1].isdigit():
                n = int(parts[1])
                path = index.roots[n] / parts[2] if n < len(index.roots) else None
            elif len(parts) > 1 and parts[0] == "pypi-files" and ".." not in parts:
                path = cache.joinpath(*parts[1:])
                if not path.is_file():
                    try:
                        _fetch(PYPI_FILES + "/".join(parts[1:]), path)
                    except OSError:
                        self.send_error(502)
                        return
            if path is not None:
                if not path.is_file():
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(path.stat().st_size))
                self.end_headers()
                with path.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        self.wfile.write(chunk)
                return
            self.send_error(404)

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}/simple"
