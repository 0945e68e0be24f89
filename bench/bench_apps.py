"""Real programs from Debian's archive on real inputs, one per run:
`python3 bench_apps.py NAME` (`--list` names them with their Debian packages).

Each program does what its users do with it, through its own entry point
where it has one, on inputs every Debian 12 machine has once the packages
are installed: the standard library's sources, the documentation sources
that python3.11-doc and docutils-doc ship, botocore's service models, and
apt's package index. Nothing is generated and nothing is fetched. A
program's own exit status (a linter's "found problems") is not a failure;
an exception is. Prints the program's own time in seconds (`section=...`),
as bench_workloads.py does. Sized for 1 to 10 s each on Debian's python3.11.
"""
import glob
import io
import os
import shutil
import sys
import tempfile
import time
import warnings

STDLIB = os.path.dirname(os.__file__)
# A slice of the standard library that the developer tools read: about
# 60K lines of varied, real code (parsers, protocols, a GUI-free app layer).
TREE = [os.path.join(STDLIB, d) for d in ("email", "json", "http", "logging", "importlib", "asyncio")]
PYDOC_SOURCES = "/usr/share/doc/python3.11/html/_sources"
PYDOC_HTML = "/usr/share/doc/python3.11/html"
DOCUTILS_DOCS = "/usr/share/doc/docutils-doc/docs"


def py_files(roots):
    out = []
    for root in roots:
        for dirpath, dirnames, files in os.walk(root):
            dirnames.sort()
            out += [os.path.join(dirpath, f) for f in sorted(files) if f.endswith(".py")]
    return out


def cli(main, argv):
    """Runs a command-line entry point as its console script would."""
    old = sys.argv
    sys.argv = argv
    try:
        main()
    except SystemExit as e:
        if e.code not in (None, 0, 1):  # 1: the tool found something to report
            raise
    finally:
        sys.argv = old


def pyflakes():
    import pyflakes.api
    cli(pyflakes.api.main, ["pyflakes"] + TREE)


def pycodestyle():
    import pycodestyle
    cli(pycodestyle._main, ["pycodestyle", "--max-line-length=100"] + TREE)


def pylint():
    from pylint.lint import Run
    Run(["--jobs=1", "--persistent=n", "--score=n", os.path.join(STDLIB, "json"),
         os.path.join(STDLIB, "email", "_header_value_parser.py")], exit=False)


def black():
    import black
    mode = black.Mode()
    for path in py_files([os.path.join(STDLIB, d) for d in ("json", "logging")]):
        with open(path, encoding="utf-8") as f:
            src = f.read()
        try:  # fast=False: black's own check that the AST is unchanged, as the CLI does
            black.format_file_contents(src, fast=False, mode=mode)
        except black.NothingChanged:
            pass


def mypy():
    """mypy (compiled with mypyc, as Debian ships it) type-checking Jinja2's
    annotated sources, copied out of dist-packages, with a cold cache."""
    import jinja2
    from mypy import api
    with tempfile.TemporaryDirectory(prefix="bench-mypy-") as tmp:
        shutil.copytree(os.path.dirname(jinja2.__file__), os.path.join(tmp, "jinja2"))
        os.chdir(tmp)
        api.run(["--cache-dir", os.path.join(tmp, "cache"), "--no-error-summary", "--follow-imports=silent",
                 "jinja2"])


def sphinx():
    """sphinx-build of Python's tutorial and FAQ from the sources
    python3.11-doc ships (CPython's own Sphinx extensions are not shipped:
    their directives stay unrendered, the rest builds as upstream does)."""
    from sphinx.cmd.build import build_main
    with tempfile.TemporaryDirectory(prefix="bench-sphinx-") as tmp:
        src = os.path.join(tmp, "src")
        for part in ("tutorial", "faq"):
            for f in glob.glob(os.path.join(PYDOC_SOURCES, part, "*.rst.txt")):
                dst = os.path.join(src, part, os.path.basename(f)[:-4])
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(f, dst)
        with open(os.path.join(src, "conf.py"), "w") as f:
            f.write("project = 'Python'\nexclude_patterns = []\n")
        with open(os.path.join(src, "index.rst"), "w") as f:
            f.write(".. toctree::\n   :glob:\n\n   tutorial/*\n   faq/*\n")
        build_main(["-b", "html", "-Q", "-E", src, os.path.join(tmp, "out")])


def docutils():
    """rst2html over docutils' own documentation (docutils-doc ships the sources)."""
    from docutils.core import publish_file
    files = sorted(glob.glob(os.path.join(DOCUTILS_DOCS, "*", "*.txt")) +
                   glob.glob(os.path.join(DOCUTILS_DOCS, "*", "rst", "*.txt")))
    for path in files:
        publish_file(source_path=path, destination=io.StringIO(), writer_name="html5",
                     settings_overrides={"report_level": 5, "halt_level": 5,
                                         "input_encoding": "utf-8", "_disable_config": True})


def pygments():
    """Syntax highlighting to HTML, as a code browser or a docs build does."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer
    lexer, fmt = PythonLexer(), HtmlFormatter(linenos=True)
    for path in py_files([os.path.join(STDLIB, d) for d in ("email", "json", "asyncio", "logging", "importlib", "http")]):
        with open(path, encoding="utf-8") as f:
            highlight(f.read(), lexer, fmt)


def botocore_models():
    import json
    import botocore
    return [json.load(open(p)) for p in sorted(glob.glob(os.path.join(
        os.path.dirname(botocore.__file__), "data", "*", "*", "service-2.json")))]


def botocore():
    """What every boto3 program does first: a client per service (models
    loaded, validated and turned into classes; no request is sent)."""
    import botocore.session
    s = botocore.session.get_session()
    for name in s.get_available_services():
        s.create_client(name, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


API_PAGE = """<!doctype html>
<html><head><title>{{ meta.serviceFullName }}</title></head><body>
<h1>{{ meta.serviceFullName | e }} <small>{{ meta.apiVersion }}</small></h1>
{% macro shape_ref(name) %}<a href="#{{ name | lower }}">{{ name }}</a>{% endmacro %}
<ul>{% for name, op in operations | dictsort %}
<li id="{{ name | lower }}"><h2>{{ name }} <code>{{ op.http.method | default('POST') }} {{ op.http.requestUri | default('/') }}</code></h2>
{{ op.documentation | default('') | striptags | truncate(300) }}
{% if op.input %}<p>Input: {{ shape_ref(op.input.shape) }}</p>{% endif %}
{% if op.output %}<p>Output: {{ shape_ref(op.output.shape) }}</p>{% endif %}
{% for e in op.errors | default([]) %}<span class="error">{{ shape_ref(e.shape) }}</span>{% endfor %}
</li>{% endfor %}</ul>
{% for name, shape in shapes | dictsort %}<section id="{{ name | lower }}"><h3>{{ name }} ({{ shape.type }})</h3>
{% if shape.members %}<table>{% for m, ref in shape.members.items() %}
<tr class="{{ loop.cycle('odd', 'even') }}"><td>{{ m }}</td><td>{{ shape_ref(ref.shape) }}</td>
<td>{{ 'required' if m in shape.required | default([]) else '' }}</td>
<td>{{ ref.documentation | default('') | striptags | wordcount }} words</td></tr>{% endfor %}</table>{% endif %}
{% if shape.enum %}<p>{{ shape.enum | join(', ') }}</p>{% endif %}
</section>{% endfor %}</body></html>
"""


def jinja2():
    """An API reference site: one HTML page per AWS service, rendered from
    botocore's models with an autoescaping Jinja2 template."""
    import jinja2
    env = jinja2.Environment(autoescape=True)
    page = env.from_string(API_PAGE)
    for model in botocore_models()[:140]:
        page.render(meta=model["metadata"], operations=model["operations"], shapes=model["shapes"])


def apt_packages():
    """Every stanza of apt's package index for bookworm main (apt_pkg reads
    apt's lz4 lists itself), as dicts."""
    import apt_pkg
    apt_pkg.init()
    lists = sorted(glob.glob("/var/lib/apt/lists/*_dists_bookworm_main_binary-amd64_Packages*"))
    if not lists:
        raise SystemExit("no apt list for bookworm main: run apt-get update")
    with apt_pkg.TagFile(lists[0]) as tags:
        return [dict(s) for s in tags]


def dep_names(field):
    return [alt.split()[0].split(":")[0] for dep in field.split(",") for alt in dep.split("|")[:1] if alt.strip()]


def networkx():
    """Dependency analysis of Debian's archive: the graph of every package in
    bookworm main, what most others pull in, and the dependency cycles."""
    import networkx as nx
    g = nx.DiGraph()
    for p in apt_packages():
        g.add_node(p["Package"], section=p.get("Section", ""))
        for d in dep_names(p.get("Depends", "") + "," + p.get("Pre-Depends", "")):
            g.add_edge(p["Package"], d)
    rank = nx.pagerank(g, max_iter=50, tol=1e-4)
    top = sorted(rank, key=rank.get, reverse=True)[:50]
    cycles = [c for c in nx.strongly_connected_components(g) if len(c) > 1]
    closure = {t: len(nx.ancestors(g, t)) for t in top[:5]}
    return len(g), len(cycles), closure


def sqlalchemy():
    """An ORM application over SQLite: Debian's package index loaded into
    tables, then the queries a package browser makes."""
    from sqlalchemy import Column, ForeignKey, Integer, String, create_engine, func, select
    from sqlalchemy.orm import Session, declarative_base, relationship
    Base = declarative_base()

    class Package(Base):
        __tablename__ = "package"
        id = Column(Integer, primary_key=True)
        name = Column(String, index=True)
        section = Column(String, index=True)
        size = Column(Integer)
        maintainer = Column(String)
        depends = relationship("Depend", back_populates="package")

    class Depend(Base):
        __tablename__ = "depend"
        id = Column(Integer, primary_key=True)
        package_id = Column(ForeignKey("package.id"), index=True)
        target = Column(String, index=True)
        package = relationship("Package", back_populates="depends")

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    pkgs = apt_packages()[:5000]
    with Session(engine) as s:
        for p in pkgs:
            row = Package(name=p["Package"], section=p.get("Section", ""), size=int(p.get("Installed-Size", 0)),
                          maintainer=p.get("Maintainer", ""))
            row.depends = [Depend(target=d) for d in dep_names(p.get("Depends", ""))]
            s.add(row)
        s.commit()
        sections = s.execute(select(Package.section, func.count(), func.sum(Package.size))
                             .group_by(Package.section)).all()
        popular = s.execute(select(Depend.target, func.count()).group_by(Depend.target)
                            .order_by(func.count().desc()).limit(100)).all()
        for name, _ in popular[:40]:
            for pkg in s.scalars(select(Package).join(Depend).where(Depend.target == name).limit(200)):
                len(pkg.depends)
    return len(sections)


def sympy():
    """Symbolic mathematics: series, integrals, simplification, solving."""
    import sympy as sp
    x, y = sp.symbols("x y")
    sp.series(sp.sin(x) * sp.exp(x) / (1 + x ** 2), x, 0, 12)
    for f in (x ** 3 * sp.exp(x) * sp.sin(x), sp.log(x) ** 2 / x ** 2, 1 / (x ** 4 + 1), sp.sqrt(1 - x ** 2)):
        sp.integrate(f, x)
    sp.simplify((x ** 4 - y ** 4) / (x ** 2 + y ** 2) + sp.sin(x) ** 2 + sp.cos(x) ** 2)
    sp.solve([x ** 2 + y ** 2 - 5, x * y - 2], [x, y])
    sp.Matrix(5, 5, lambda i, j: sp.Rational(1, i + j + 1) + x ** (i * j % 3)).det()


def cython():
    """Cython translating pure-Python modules to C (the C compiler is not run)."""
    from Cython.Build.Dependencies import cythonize
    with tempfile.TemporaryDirectory(prefix="bench-cython-") as tmp:
        for m in ("difflib.py", "textwrap.py", "fractions.py", "shlex.py"):
            shutil.copyfile(os.path.join(STDLIB, m), os.path.join(tmp, m))
        cythonize([os.path.join(tmp, "*.py")], quiet=True, nthreads=0, language_level=3, force=True)


def bs4():
    """Scraping: every page of the Python library reference parsed with
    BeautifulSoup (html.parser), its links and headings collected."""
    from bs4 import BeautifulSoup
    links = 0
    for path in sorted(glob.glob(os.path.join(PYDOC_HTML, "library", "*.html")))[:60]:
        with open(path, encoding="utf-8") as f:
            soup = BeautifulSoup(f.read(), "html.parser")
        links += len(soup.find_all("a", href=True))
        [h.get_text() for h in soup.find_all(["h1", "h2", "h3"])]
    return links


# Name: (function, Debian packages it needs).
PROGRAMS = {
    "pyflakes": (pyflakes, ["python3-pyflakes"]),
    "pycodestyle": (pycodestyle, ["python3-pycodestyle"]),
    "pylint": (pylint, ["pylint"]),
    "black": (black, ["black"]),
    "mypy": (mypy, ["python3-mypy", "python3-jinja2"]),
    "sphinx": (sphinx, ["python3-sphinx", "python3.11-doc"]),
    "docutils": (docutils, ["python3-docutils", "docutils-doc"]),
    "pygments": (pygments, ["python3-pygments"]),
    "botocore": (botocore, ["python3-botocore"]),
    "jinja2": (jinja2, ["python3-jinja2", "python3-botocore"]),
    "networkx": (networkx, ["python3-networkx", "python3-apt"]),
    "sqlalchemy": (sqlalchemy, ["python3-sqlalchemy", "python3-apt"]),
    "sympy": (sympy, ["python3-sympy"]),
    "cython": (cython, ["cython3"]),
    "bs4": (bs4, ["python3-bs4", "python3.11-doc"]),
}
APPS = list(PROGRAMS)


def main():
    if sys.argv[1:] == ["--list"]:
        for name, (fn, pkgs) in PROGRAMS.items():
            print("%-12s %-40s %s" % (name, " ".join(pkgs), (fn.__doc__ or "").split("\n")[0]))
        return
    if sys.argv[1:] == ["--packages"]:
        print(" ".join(sorted({p for _, pkgs in PROGRAMS.values() for p in pkgs})))
        return
    fn = PROGRAMS[sys.argv[1]][0]
    # Deprecation notes from one library about another (pythran's on numpy) are not the benchmark's.
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    # What the programs tell their users on stderr (docutils' math notes, sphinx's
    # warnings) is kept in memory and shown only if the program fails.
    said, sys.stderr = sys.stderr, io.StringIO()
    t0 = time.perf_counter()
    try:
        fn()
    except BaseException:
        said.write(sys.stderr.getvalue())
        sys.stderr = said
        raise
    elapsed = time.perf_counter() - t0
    sys.stderr = said
    print("section=%.6f" % elapsed)


if __name__ == "__main__":
    main()
