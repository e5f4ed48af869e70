"""`safeset finetune`: TRL and LLaMA-Factory configs (and the commands) for exported data; `--launch`
runs TRL."""

from __future__ import annotations

import shlex

import click

from pipeline.cli.common import console, fail
from pipeline.cli.group import main


@main.command()
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    type=click.Path(file_okay=False),
    help="An sft, dpo or llamafactory export folder (repeatable).",
)
@click.option("--base-model", required=True, help="Hub id or local path of the model to fine-tune.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for configs and models.")
@click.option("--datasets", help="Comma-separated datasets to train on, e.g. edge (default: all exported).")
@click.option("--max-steps", type=click.IntRange(min=1), help="Train this many steps (default: one epoch).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Per device.")
@click.option("--max-length", type=click.IntRange(min=16), default=1024, show_default=True, help="Tokens.")
@click.option("--template", default="default", show_default=True, help="LLaMA-Factory chat template.")
@click.option("--cpu", is_flag=True, help="Train TRL on the CPU (small models, machines without a GPU).")
@click.option("--launch", is_flag=True, help="Run the TRL commands now (SFT, then DPO).")
def finetune(
    data: tuple[str, ...],
    base_model: str,
    out: str,
    datasets: str | None,
    max_steps: int | None,
    batch_size: int,
    max_length: int,
    template: str,
    cpu: bool,
    launch: bool,
) -> None:
    """Write TRL SFT/DPO configs and LLaMA-Factory configs for BASE-MODEL and exported data, with the
    exact commands (also in OUT/commands.sh). Each run starts from the base model.

    \b
    Examples:
      safeset export --format sft --out exports/sft && safeset export --format dpo --out exports/dpo
      safeset finetune --data exports/sft --data exports/dpo --base-model Qwen/Qwen2.5-7B-Instruct --out ft
      safeset finetune --data exports/sft --datasets edge --base-model ./my-model --out ft --launch
    """
    from pipeline.export import ExportError
    from pipeline.export.finetune import Settings, plan_finetune
    from pipeline.export.finetune import launch as run_trl

    chosen = tuple(d.strip() for d in datasets.split(",") if d.strip()) if datasets else None
    settings = Settings(base_model, chosen, max_steps, batch_size, max_length, template, cpu)
    try:
        plan = plan_finetune(list(data), out, settings)
        for path in plan.configs:
            console.print(f"wrote {path}", highlight=False)
        console.print(f"run (also in {plan.out / 'commands.sh'}):", highlight=False)
        for command in plan.commands:
            console.print(f"  {shlex.join(command)}", highlight=False, soft_wrap=True)
        if launch:
            run_trl(plan)
            console.print(f"trained: {', '.join(str(plan.out / f'trl-{c[1]}') for c in plan.trl_commands)}")
    except ExportError as exc:
        fail(str(exc))
