"""`python -m bot [run | demo | draft]`: the command line.

Exit codes: 0 done, 2 bad arguments or settings, 3 incident not found, 4 a source failed and the draft
is partial, 1 anything else (a clear one-line message on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.analysis.models import Draft, DraftOptions, draft_json
from bot.config import load_settings
from bot.errors import ConfigError, IncidentNotFound, InputError, PostmortemError
from bot.render.blockkit import render_blockkit
from bot.render.chart import render_timeline_chart
from bot.render.confluence import render_confluence
from bot.render.markdown import render_markdown
from bot.render.options import RenderOptions
from bot.render.timefmt import format_duration
from bot.samples import DEFAULT_SAMPLE

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_PARTIAL = 0, 1, 2, 3, 4
FORMATS = ("markdown", "confluence", "blocks", "json")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line on stderr, exit 2
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m bot", description="Postmortem Bot: draft blameless postmortems from incidents."
    )
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    commands.add_parser("run", help="run the Slack app in Socket Mode (the default)")

    demo = commands.add_parser(
        "demo",
        help="draft the bundled sample incident, no credentials needed",
        description="Replay a bundled sample incident (PagerDuty, GitHub and Slack API bodies) through the real "
        "mapping, analysis and renderers, and write the Markdown, Confluence storage, Block Kit and chart outputs.",
    )
    demo.add_argument(
        "--sample", type=Path, default=DEFAULT_SAMPLE, help="sample folder (default: %(default)s)"
    )
    demo.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: %(default)s)")
    demo.add_argument("--timezone", help="team time zone shown beside UTC (default: the sample's)")
    demo.add_argument("--templates-dir", type=Path, help="folder with template overrides")

    draft = commands.add_parser(
        "draft",
        help="draft one incident from the live APIs",
        description="Fetch an incident from PagerDuty, GitHub and Slack (settings from the environment or .env) "
        "and print its draft postmortem.",
    )
    draft.add_argument("incident", help="PD-9876, 9876 (the incident number) or a PagerDuty incident id")
    draft.add_argument("--channel", help="Slack channel id (default: found from the incident)")
    draft.add_argument("--format", choices=FORMATS, default="markdown")
    draft.add_argument("--out", default="-", help="output file, '-' for stdout (default)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            return run_demo(args)
        if args.command == "draft":
            return run_draft(args)
        from bot.app import run_app  # the Slack stack loads only for `run`

        return run_app()
    except (ConfigError, InputError) as exc:
        return _fail(EXIT_USAGE, exc)
    except IncidentNotFound as exc:
        return _fail(EXIT_NOT_FOUND, exc)
    except PostmortemError as exc:
        return _fail(EXIT_ERROR, exc)
    except KeyboardInterrupt:
        return 130


def _fail(code: int, exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return code


def _progress(source: str, message: str, *, done: bool = False, failed: bool = False) -> None:
    # One write per line: sources report from their own threads.
    sys.stderr.write(f"  {source:<9} {message}\n")
    sys.stderr.flush()


def render(draft: Draft, fmt: str, options: RenderOptions) -> str:
    if fmt == "markdown":
        return render_markdown(draft, options=options)
    if fmt == "confluence":
        return render_confluence(draft, options=options)
    if fmt == "blocks":
        return json.dumps({"blocks": render_blockkit(draft, options=options)}, indent=2, ensure_ascii=False)
    return draft_json(draft, indent=2)


def run_demo(args: argparse.Namespace) -> int:
    from bot.deps import build_replay_sources
    from bot.postmortem import draft_incident
    from bot.sources.gather import GatherOptions

    sample = json.loads((args.sample / "sample.json").read_text(encoding="utf-8"))
    repos: dict[str, str] = sample["service_repos"]
    options = RenderOptions(
        timezone=args.timezone or sample.get("timezone", "UTC"), templates_dir=args.templates_dir
    )
    print(f"Replaying {args.sample} ({sample['incident_ref']})", file=sys.stderr)
    draft = draft_incident(
        ref=sample["incident_ref"],
        channel_id=sample.get("channel_id"),
        sources=build_replay_sources(args.sample, environment=sample.get("deploy_environment", "production")),
        gather_options=GatherOptions(repo_for_service=repos.get),
        draft_options=DraftOptions(),
        now=datetime.fromisoformat(sample["generated_at"]) if "generated_at" in sample else datetime.now(UTC),
        progress=_progress,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / draft.incident.key
    outputs = {
        stem.with_suffix(".md"): render(draft, "markdown", options),
        stem.with_suffix(".confluence.xhtml"): render(draft, "confluence", options),
        stem.with_suffix(".blocks.json"): render(draft, "blocks", options),
    }
    for path, text in outputs.items():
        path.write_text(text, encoding="utf-8")
    chart = stem.with_suffix(".timeline.png")
    chart.write_bytes(render_timeline_chart(draft, options=options))
    print(summarise(draft, [*outputs, chart]))
    return EXIT_OK


def summarise(draft: Draft, written: list[Path]) -> str:
    lines = [f"{draft.incident.key} — {draft.incident.title}", "", "Wrote:"]
    lines += [f"  {path}" for path in written]
    lines += ["", "Key metrics:"]
    for metric in draft.metrics:
        lines.append(
            f"  {metric.label:<20} {format_duration(metric.seconds)}  ({metric.start.text} → {metric.end.text})"
        )
    suspect = draft.top_suspect
    lines += ["", "Suspect change:"]
    if suspect:
        d = suspect.deployment
        lines.append(f"  {d.repo} {d.sha[:7]} — {d.description} ({'; '.join(suspect.reasons)})")
        lines.append(f"  {d.url}")
    else:
        lines.append("  none found in the window before the trigger")
    lines.append("")
    lines.append(f"Timeline: {len(draft.timeline.events)} events; {draft.redaction_count} secrets redacted.")
    for note in draft.source_notes:
        lines.append(f"Note: {note}")
    return "\n".join(lines)


def run_draft(args: argparse.Namespace) -> int:
    from bot.deps import build_live_sources, draft_options, gather_options, render_options
    from bot.postmortem import draft_incident
    from bot.sources.pagerduty_mapping import parse_incident_ref

    parse_incident_ref(args.incident)  # a malformed id is a usage error before any network call
    settings = load_settings()
    draft = draft_incident(
        ref=args.incident,
        channel_id=args.channel,
        sources=build_live_sources(settings),
        gather_options=gather_options(settings),
        draft_options=draft_options(settings),
        now=datetime.now(UTC),
        progress=_progress,
    )
    text = render(draft, args.format, render_options(settings))
    if args.out == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"Wrote {args.out}", file=sys.stderr)
    for note in draft.source_notes:
        print(f"warning: {note}", file=sys.stderr)
    return EXIT_PARTIAL if draft.is_partial else EXIT_OK
