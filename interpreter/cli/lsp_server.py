"""The pygls language server behind `tideflow lsp`: protocol plumbing only. Checks are
`dsl.validate_text` (the buffer, not the file on disk); completion, hover and definition are
dsl/editor.py. LSP positions are 0-based (UTF-16 code units; pygls converts), tideflow's are
1-based."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from dsl import editor
from dsl.diagnostics import Diagnostic, Severity
from dsl.loader import load_text
from dsl.source import SourceDocument
from dsl.validate import validate_text
from interpreter.cli._common import version
from interpreter.cli.validate_cmd import declares_dsl

CHANGE_PAUSE_SECONDS = 0.1
_KINDS = {
    "state": lsp.CompletionItemKind.Reference,
    "activity": lsp.CompletionItemKind.Function,
    "signal": lsp.CompletionItemKind.Event,
}


class TideflowServer(LanguageServer):
    def __init__(self, activities: Collection[str] | None, dirs: Sequence[Path]) -> None:
        super().__init__("tideflow", version())
        self.activities = activities
        self.dirs = list(dirs)
        # The last parse of each buffer that loaded, and the text it was parsed from:
        # requests on an unchanged buffer reuse it, and completion while typing (a
        # half-written line that does not parse) still knows the state names.
        self.parsed: dict[str, tuple[str, SourceDocument]] = {}
        self.latest: dict[str, int] = {}  # the newest change's version of each buffer

    def check(self, uri: str) -> None:
        text = self.workspace.get_text_document(uri).source
        if not declares_dsl(text):  # a YAML/JSON file that is not a workflow
            self.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[])
            )
            return
        path = to_fs_path(uri) or uri
        dirs = [*self.dirs, Path(path).parent]
        result = validate_text(text, path, activities=self.activities, workflow_dirs=dirs)
        if result.document is not None:
            self.parsed[uri] = (text, result.document)
        lines = text.splitlines()
        found = [_diagnostic(d, lines, result.document) for d in result.diagnostics]
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=found)
        )

    def document(self, uri: str) -> tuple[SourceDocument | None, list[str]]:
        text = self.workspace.get_text_document(uri).source
        cached = self.parsed.get(uri)
        if cached is not None and cached[0] == text:
            return cached[1], text.splitlines()
        loaded = load_text(text, uri).document
        if loaded is not None:
            self.parsed[uri] = (text, loaded)
            return loaded, text.splitlines()
        return (cached[1] if cached else None), text.splitlines()


def _diagnostic(
    found: Diagnostic, lines: list[str], document: SourceDocument | None
) -> lsp.Diagnostic:
    line = max(0, found.line - 1)
    start = max(0, found.column - 1)
    text = lines[line] if line < len(lines) else ""
    end = _token_end(found, text, start, document)
    message = found.message + (f"\nhint: {found.hint}" if found.hint else "")
    return lsp.Diagnostic(
        range=lsp.Range(lsp.Position(line, start), lsp.Position(line, end)),
        message=message,
        severity=(
            lsp.DiagnosticSeverity.Error
            if found.severity is Severity.ERROR
            else lsp.DiagnosticSeverity.Warning
        ),
        code=found.code,
        source="tideflow",
    )


def _token_end(found: Diagnostic, text: str, start: int, document: SourceDocument | None) -> int:
    """Where the underline ends: after the string scalar the diagnostic points at (its
    quotes included), else at the end of the line (a comment left out)."""
    value = _scalar_at(found, document)
    if isinstance(value, str) and value:
        quote = text[start : start + 1]
        if quote in ("'", '"'):
            close = text.find(quote, start + 1)
            if close > start:
                return close + 1
        elif text[start : start + len(value)] == value:
            return start + len(value)
    comment = text.find(" #", start)
    end = len((text if comment < 0 else text[:comment]).rstrip())
    return end if end > start else start + 1


def _scalar_at(found: Diagnostic, document: SourceDocument | None) -> object:
    if document is None or document.value_positions.get(found.path) != found.position:
        return None
    return editor.node_at(document.data, found.path)


def build_server(activities: Collection[str] | None, dirs: Sequence[Path]) -> TideflowServer:
    server = TideflowServer(activities, dirs)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: TideflowServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.check(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: TideflowServer, params: lsp.DidChangeTextDocumentParams) -> None:
        # Typing sends a change per keystroke: check only the buffer no newer change follows
        # within a short pause, instead of queueing one whole-file validation per key.
        uri, version = params.text_document.uri, params.text_document.version
        ls.latest[uri] = version
        await asyncio.sleep(CHANGE_PAUSE_SECONDS)
        if ls.latest.get(uri) == version:
            ls.check(uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: TideflowServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.check(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: TideflowServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.parsed.pop(params.text_document.uri, None)
        ls.latest.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )

    @server.feature(
        lsp.TEXT_DOCUMENT_COMPLETION,
        lsp.CompletionOptions(trigger_characters=[":", " ", "["]),
    )
    def completion(ls: TideflowServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        document, lines = ls.document(params.text_document.uri)
        line = params.position.line
        if document is None or line >= len(lines) + 1:
            return lsp.CompletionList(is_incomplete=False, items=[])
        text = lines[line] if line < len(lines) else ""
        found = editor.completions(
            document, text, line + 1, params.position.character + 1, ls.activities
        )
        items = [
            lsp.CompletionItem(label=c.label, kind=_KINDS[c.kind], detail=c.detail) for c in found
        ]
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: TideflowServer, params: lsp.HoverParams) -> lsp.Hover | None:
        document, _ = ls.document(params.text_document.uri)
        if document is None:
            return None
        found = editor.hover(document, params.position.line + 1, params.position.character + 1)
        if found is None:
            return None
        return lsp.Hover(
            contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=found.text),
            range=lsp.Range(
                lsp.Position(found.start.line - 1, found.start.column - 1),
                lsp.Position(found.end.line - 1, found.end.column - 1),
            ),
        )

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: TideflowServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        document, _ = ls.document(params.text_document.uri)
        if document is None:
            return None
        target = editor.definition(
            document, params.position.line + 1, params.position.character + 1
        )
        if target is None:
            return None
        where = lsp.Position(target.line - 1, target.column - 1)
        return lsp.Location(uri=params.text_document.uri, range=lsp.Range(where, where))

    return server
