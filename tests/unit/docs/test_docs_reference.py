"""The site's reference pages say what the code does: regenerated in memory, each must equal the
committed docs/reference/<page> (run `make docs-reference` after changing a parameter, a flag, a
message or a notification)."""

from __future__ import annotations

import gen_reference
import pytest


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return gen_reference.render_all()


@pytest.mark.parametrize("name", sorted(gen_reference.PAGES))
def test_generated_page_is_up_to_date(name: str, pages: dict[str, str]) -> None:
    # GIVEN the code as it is WHEN the page is generated again THEN it equals the committed page
    committed = gen_reference.REFERENCE / name
    assert committed.is_file(), f"docs/reference/{name} is missing: run `make docs-reference`"
    assert committed.read_text() == pages[name], f"docs/reference/{name} is stale: run `make docs-reference`"


def test_every_pipeline_parameter_and_cli_command_is_in_the_reference(pages: dict[str, str]) -> None:
    # GIVEN the parameter registry and the CLI parser WHEN the pages are generated
    from yolopipe.cli.parser import build_parser
    from yolopipe_shared import parameters

    # THEN each parameter has its row, with the `yolopipe run` flag that sets it
    rows = {line.split(" | ")[0].strip("| *"): line for line in pages["pipeline-parameters.md"].splitlines()
            if line.startswith("| **")}
    assert list(rows) == [spec.name for spec in parameters.PARAMETERS]
    assert "`--epochs`" in rows["Epochs"] and "`--variant`" in rows["ModelVariant"]
    assert "`--dataset`" in rows["DatasetS3Uri"]
    # AND each top-level command has its section
    commands = next(a for a in build_parser()._actions if a.dest == "command")
    for name in commands.choices:
        assert f"## `yolopipe {name}`" in pages["cli.md"]


def test_every_stack_parameter_is_in_the_reference(pages: dict[str, str]) -> None:
    import yaml

    template = yaml.load((gen_reference.ROOT / "template.yaml").read_text(), Loader=gen_reference._TemplateLoader)
    for name in template["Parameters"]:
        assert f"| **{name}** |" in pages["stack-parameters.md"]


def test_notifications_are_rendered_by_the_notifier_for_each_status_event(pages: dict[str, str]) -> None:
    # GIVEN the EventBridge status events WHEN the page is generated THEN each status has its Slack and email
    page = pages["notifications.md"]
    for status, icon in (("Executing", "🚀"), ("Succeeded", "✅"), ("Failed", "❌"), ("Stopped", "⏹️")):
        assert f"## {status} (`events/pipeline_{status.lower()}.json`)" in page
        assert icon in page
    assert "Subject **yolopipe: Training failed: shapes**" in page.replace("subject **", "Subject **")
    assert "quality gate: 0.412 < MinMap50_95 0.5: not registered" in page
    # AND the trigger's own refusal and misplaced-marker emails are there, with the problems it found
    assert "Subject **yolopipe: dataset shapes refused**" in page
    assert "data.yaml:5: `download` is not allowed" in page
    assert "(`marker-ignored`," in page


def test_an_undescribed_evaluation_field_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN evaluate.py writes a field that docs/evaluation_fields.yaml does not describe
    monkeypatch.setattr(gen_reference, "evaluation_fields", lambda: ["metrics", "brand_new_field"])
    # WHEN the page is generated THEN the generator names the field to describe
    with pytest.raises(SystemExit, match="brand_new_field"):
        gen_reference.evaluation_reference()


def test_check_mode_reports_a_stale_page(pages: dict[str, str], tmp_path, monkeypatch: pytest.MonkeyPatch,
                                         capsys) -> None:
    # GIVEN a reference folder where one page was edited by hand
    monkeypatch.setattr(gen_reference, "render_all", lambda: pages)
    for name, text in pages.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "cli.md").write_text("edited by hand\n")
    monkeypatch.setattr(gen_reference, "REFERENCE", tmp_path)
    # WHEN the generator checks THEN it fails naming that page only
    assert gen_reference.main(["--check"]) == 1
    assert capsys.readouterr().err.strip() == "docs/reference/cli.md is stale: run `make docs-reference`"
