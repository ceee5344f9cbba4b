"""Loading a workflow file: plain JSON data plus the position of every key and value.

The steps live in their own modules: dsl/source_file.py reads and decodes (size and encoding
checks), dsl/yaml_parser.py yields parser events, dsl/yaml_builder.py builds the data and the
positions from them, dsl/yaml_errors.py turns a parser error into a located diagnostic. The
caps are in dsl/load_limits.py. JSON is YAML, so `.json` files take the same path.

Every problem becomes one located `Diagnostic` (codes TF001-TF014); nothing raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml.error import YAMLError

from dsl.diagnostics import Diagnostic, error_at
from dsl.source import SourceDocument
from dsl.source_file import check_text, read_source
from dsl.yaml_builder import Builder, Fatal
from dsl.yaml_errors import syntax_diagnostic
from dsl.yaml_parser import event_source

LOADER_CODES: dict[str, str] = {
    "TF001": "YAML syntax error",
    "TF002": "Duplicate key",
    "TF003": "Top level is not a mapping",
    "TF004": "Tab used for indentation",
    "TF005": "File is not UTF-8 text",
    "TF006": "Empty file",
    "TF007": "File too large",
    "TF008": "Alias expansion too large or recursive",
    "TF009": "Nesting too deep",
    "TF010": "File cannot be read",
    "TF011": "Key is not a string",
    "TF012": "Unsupported YAML tag",
    "TF013": "More than one YAML document",
    "TF014": "Unquoted template",
}


@dataclass
class LoadResult:
    """`document` is None when the file could not be loaded; `diagnostics` then says why."""

    document: SourceDocument | None
    diagnostics: list[Diagnostic] = field(default_factory=list)


def load_file(path: str | Path, *, display_name: str | None = None) -> LoadResult:
    """Read and load `path` (size-capped, UTF-8 with optional BOM)."""
    name = display_name if display_name is not None else str(path)
    text = read_source(path, name)
    if isinstance(text, Diagnostic):
        return LoadResult(None, [text])
    return load_text(text, name)


def load_text(text: str, file: str = "<string>") -> LoadResult:
    """Load YAML or JSON text. Never raises."""
    problem = check_text(text, file)
    if problem is not None:
        return LoadResult(None, [problem])
    builder = Builder(text, file)
    try:
        builder.build(event_source(text))
    except Fatal:
        return LoadResult(None, builder.diagnostics)
    except YAMLError as exc:
        syntax = syntax_diagnostic(text, file, exc)
        if any(d.code == "TF014" and d.line == syntax.line for d in builder.diagnostics):
            return LoadResult(None, builder.diagnostics)  # the unquoted template says it better
        return LoadResult(None, [*builder.diagnostics, syntax])
    except RecursionError:  # cannot happen with the event builder; kept as a last guard
        hint = "flatten the structure or move parts into child workflows"
        return LoadResult(
            None, [error_at(file, "TF009", "the document is nested too deeply", hint)]
        )
    except Exception as exc:  # a parser bug must still not reach the user as a traceback
        hint = "this is a parser bug; please report it with the file"
        return LoadResult(None, [error_at(file, "TF001", f"the YAML parser failed: {exc}", hint)])
    document = builder.document()
    return LoadResult(document, builder.diagnostics)
