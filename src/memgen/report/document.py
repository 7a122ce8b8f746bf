"""A report as a list of blocks, rendered as Markdown (figures linked) and as one self-contained HTML
file (figures embedded, long tables folded).

Blocks: ("h1" | "h2" | "h3" | "p", text); ("table", DataFrame, merged): the first `merged` columns
show a value once over the rows that repeat it; ("img", path relative to the report, caption);
("details", summary, blocks): folded in HTML, a bold line and the blocks in Markdown.
"""
import base64
from importlib.resources import files
from pathlib import Path

import jinja2
import pandas as pd

TEMPLATE = "report.html.j2"


def table(columns, rows, merged=0):
    return ("table", pd.DataFrame(rows, columns=columns), merged)


def spans(frame, merged):
    """Per row, the cells to draw as (text, rowspan); a merged cell repeated from the row above is None."""
    rows = frame.astype(str).values.tolist()
    out = [[(text, 1) for text in row] for row in rows]
    for col in range(merged):
        start = 0
        for i in range(1, len(rows) + 1):
            # a run of equal cells ends where the value, or any merged cell left of it, changes
            if i == len(rows) or rows[i][:col + 1] != rows[start][:col + 1]:
                out[start][col] = (rows[start][col], i - start)
                for j in range(start + 1, i):
                    out[j][col] = None
                start = i
    return out


def to_markdown(blocks):
    out = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + block[1])
        elif kind == "p":
            out.append(block[1])
        elif kind == "table":
            frame = block[1]
            out.append("| " + " | ".join(md_cell(h) for h in frame.columns) + " |")
            out.append("|" + "---|" * len(frame.columns))
            out += ["| " + " | ".join("" if c is None else md_cell(c[0]) for c in row) + " |"
                    for row in spans(frame, block[2])]
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})")
        elif kind == "details":
            out += [f"**{block[1]}**", "", to_markdown(block[2]).rstrip("\n")]
        out.append("")
    return "\n".join(out)


def md_cell(text):
    """A table cell on one line: a prompt's line breaks shown as ⏎; pipes and the < of a <mem-...> answer
    escaped, so that neither splits the cell nor reads as an HTML tag."""
    return str(text).replace("|", "\\|").replace("<", "\\<").replace("\n", " ⏎ ")


def to_html(blocks, title, base):
    """One HTML file that works on its own: every figure (a path relative to `base`) embedded as a data URI."""
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(files(__package__).joinpath(TEMPLATE).read_text())
    return template.render(title=title, blocks=html_blocks(blocks, Path(base)))


def html_blocks(blocks, base):
    """The blocks as the template reads them: tables as cells with their spans, figures as data URIs."""
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "table":
            out.append({"kind": kind, "header": list(block[1].columns), "rows": spans(block[1], block[2])})
        elif kind == "img":
            data = base64.b64encode((base / block[1]).read_bytes()).decode()
            out.append({"kind": kind, "src": f"data:image/png;base64,{data}", "caption": block[2]})
        elif kind == "details":
            out.append({"kind": kind, "summary": block[1], "blocks": html_blocks(block[2], base)})
        else:
            out.append({"kind": kind, "text": block[1].replace("`", "")})
    return out
