"""Every generation stage (`safeset run`), declared once, in pipeline order. A stage names the stages
it consumes; the runner needs nothing else to plan a run. The eval and judge run kinds have their own
stage lists (pipeline/eval/stages.py, pipeline/judges/stages.py); pipeline/kinds.py names all three."""

from __future__ import annotations

from pipeline.stage import Stage
from pipeline.stages.core import CoreStage
from pipeline.stages.dedup import DedupStage
from pipeline.stages.domains import DomainsStage
from pipeline.stages.edge import EdgeStage
from pipeline.stages.evolve import EvolveStage
from pipeline.stages.instructions import InstructionsStage
from pipeline.stages.overrefusal import OverrefusalAlignStage, OverrefusalTestStage
from pipeline.stages.overrefusal_seeds import OverrefusalSeedsStage
from pipeline.stages.persona_pool import PersonaPoolStage
from pipeline.stages.personas import PersonasStage
from pipeline.stages.related_personas import RelatedPersonasStage
from pipeline.stages.rewrite import RewriteStage
from pipeline.stages.safety_filter import SafetyFilterStage
from pipeline.stages.scenarios import ScenariosStage
from pipeline.stages.tactics import TacticsStage

STAGES: list[type[Stage]] = [
    DomainsStage,
    ScenariosStage,
    PersonasStage,
    RelatedPersonasStage,
    PersonaPoolStage,
    InstructionsStage,
    SafetyFilterStage,
    DedupStage,
    CoreStage,
    TacticsStage,
    RewriteStage,
    EdgeStage,
    OverrefusalSeedsStage,
    EvolveStage,
    OverrefusalTestStage,
    OverrefusalAlignStage,
]
