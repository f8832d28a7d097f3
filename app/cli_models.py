"""`annlab models list|show|create|version|alias|predict`: the model registry.

A version is a succeeded run's model (or a snapshot's); an alias names a version
and can be moved, which takes effect on the server's next request. Predicting by
``NAME@ALIAS`` or ``NAME/VERSION`` reads rows as `annlab predict` does.
"""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli_client import (
    CsvOption,
    EpochOption,
    JsonInputOption,
    OutputOption,
    check_output,
    connect,
    load_rows,
    show_prediction,
)
from app.cli_common import (
    JsonOption,
    KeyOption,
    RunArgument,
    UrlOption,
    answer,
    fail,
    stdout,
)
from app.cli_input import parse_model_ref
from app.cli_render import models_table, versions_table

models_cli = typer.Typer(help="The model registry: names, versions, aliases.", no_args_is_help=True)


@models_cli.command("list")
def models_list(as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None) -> None:
    """Every model with its latest version and aliases."""
    with connect(url, key) as api:
        page = api.list_models()
    answer(page, as_json, models_table(page.items))


@models_cli.command("show")
def models_show(
    name: str, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """A model's versions and where its aliases point."""
    with connect(url, key) as api:
        model = api.get_model(name)
    answer(model, as_json, versions_table(model))


@models_cli.command("create")
def models_create(
    name: str,
    description: Annotated[str | None, typer.Option(help="What the model is for.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Create a model (a name to register versions under)."""
    with connect(url, key) as api:
        model = api.create_model(name, description=description)
    answer(model, as_json, f"created model {model.name}")


@models_cli.command("version")
def models_version(
    name: str,
    run_id: RunArgument,
    epoch: EpochOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Register a succeeded run's model (or one of its snapshots) as the next version."""
    with connect(url, key) as api:
        version = api.create_version(name, run_id=run_id, epoch=epoch)
    answer(version, as_json, f"{name} version {version.version} ← run {version.run_id}")


@models_cli.command("alias")
def models_alias(
    name: str,
    alias: str,
    version: Annotated[int | None, typer.Argument(help="The version the alias points to.")] = None,
    remove: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Point ALIAS at VERSION (takes effect on the next request), or --delete it."""
    if remove == (version is not None):
        raise typer.BadParameter("give a VERSION to point the alias at, or --delete")
    with connect(url, key) as api:
        if remove:
            api.delete_alias(name, alias)
            stdout().print(f"deleted alias {name}@{alias}")
        else:
            api.set_alias(name, alias, version=version)  # type: ignore[arg-type]
            stdout().print(f"{name}@{alias} → version {version}")


@models_cli.command("predict")
def models_predict(
    ref: Annotated[str, typer.Argument(help="NAME@ALIAS or NAME/VERSION.", metavar="MODEL")],
    csv: CsvOption = None,
    rows: JsonInputOption = None,
    output: OutputOption = "table",
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Predict with a model by alias or version."""
    check_output(output)
    name, version, alias = parse_model_ref(ref)
    with connect(url, key) as api:
        model = api.get_model(name)
        number = version if version is not None else model.aliases.get(alias or "")
        if number is None:
            fail(
                f"model {name!r} has no alias {alias!r} (aliases: {sorted(model.aliases) or 'none'})"
            )
        found = [entry for entry in model.versions if entry.version == number]
        if not found:
            fail(f"model {name!r} has no version {number}")
        dataset = api.get_dataset(api.get_run(found[0].run_id).dataset)
        inputs, records = load_rows(csv, rows, dataset.feature_names)
        prediction = api.predict_model(name, inputs, version=version, alias=alias, records=records)
    show_prediction(prediction, dataset.class_names, output)
