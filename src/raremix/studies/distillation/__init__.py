"""Distillation: students trained on a teacher's labels vs the teacher, over pool size."""

from raremix.studies.record import Study

STUDIES = [
    Study(
        "distillation",
        "raremix.studies.distillation.verdict:distillation_verdict",
        "raremix.studies.distillation.run:run_distill",
        eval_seed_key=None,
        config_type="raremix.studies.distillation.run:DistillConfig",
        models="raremix.studies.distillation.run:distill_models",
    )
]
