"""Conformance kits: the checks every plugin of a kind must pass (as scikit-learn's estimator checks), one
module per kind. In a plugin's test file::

    from ascbench.testing import model_checks

    @pytest.mark.parametrize("check", model_checks("my-net"), ids=lambda c: c.__name__)
    def test_conformance(check):
        check()

or simply ``check_model("my-net")``. Every kind has the same pair: ``model_checks``/``check_model``,
``protocol_checks``/``check_protocol`` (with a dataset), ``dataset_checks``/``check_dataset``,
``strategy_checks``/``check_strategy``, ``semi_checks``/``check_semi`` (both train on the tiny embedded dataset),
``frontend_checks``/``check_frontend``, ``recipe_checks``/``check_recipe``, ``logger_checks``/``check_logger``,
``metric_checks``/``check_metric``. A failure raises ``ConformanceError`` naming the plugin, its distribution and the
rule it broke. Which kit a kind has is declared in ``ascbench.kinds``.
"""

from ascbench.testing.datasets import check_dataset, dataset_checks
from ascbench.testing.frontends import check_frontend, frontend_checks
from ascbench.testing.kit import ConformanceError
from ascbench.testing.loggers import check_logger, logger_checks
from ascbench.testing.metrics import check_metric, metric_checks
from ascbench.testing.models import CONTEXT, check_model, model_checks
from ascbench.testing.protocols import check_protocol, protocol_checks
from ascbench.testing.recipes import check_recipe, recipe_checks
from ascbench.testing.training import check_semi, check_strategy, semi_checks, strategy_checks

__all__ = ["ConformanceError", "CONTEXT", "check_model", "model_checks", "check_protocol", "protocol_checks",
           "check_dataset", "dataset_checks", "check_strategy", "strategy_checks", "check_semi", "semi_checks",
           "check_frontend", "frontend_checks", "check_recipe", "recipe_checks", "check_logger", "logger_checks",
           "check_metric", "metric_checks"]
