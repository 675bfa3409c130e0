"""CDK construct: the deployments' CloudWatch dashboard, their alarms, and the overdue check.

The Lambdas publish their metrics as EMF log lines (lambdas/common/metrics.py) in the
namespace EbControlPlane. Powertools adds the dimension `service`, the function's
POWERTOOLS_SERVICE_NAME, to each of them, so every metric here names it too: CloudWatch
matches a metric only by its full set of dimensions. Step Functions publishes the
execution counts in AWS/States with the dimension StateMachineArn.

Every alarm notifies the stack's SNS topic. The alarms on counts treat missing data as not
breaching, because CloudWatch receives no data point while nothing happens. The overdue
alarm reads a count that its check publishes on every run, so missing data there means
that the check stopped running, and it notifies as INSUFFICIENT_DATA.
"""

from __future__ import annotations

import typing
from collections.abc import Callable

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas import check_overdue_executions
from lambdas.common.metrics import NAMESPACE
from lambdas.common.models import Plan
from lambdas.common.settings import Settings

# POWERTOOLS_SERVICE_NAME of every function of the stack, which Powertools publishes as the
# dimension `service` of each metric.
SERVICE_NAME = "control-plane"
# Alarms on counts of events (a failed execution, a rollback, an opened breaker).
EVENT_PERIOD = Duration.minutes(5)
# The check publishes the overdue count once per run, so a period without it means it did not run.
OVERDUE_PERIOD = Duration.minutes(check_overdue_executions.CHECK_RATE_MINUTES)
OVERDUE_EVALUATION_PERIODS = 2
# Deployments are sparse, so the dashboard sums and averages them per hour over a week.
DASHBOARD_PERIOD = Duration.hours(1)
DASHBOARD_INTERVAL = Duration.days(7)
ROLLBACK_OUTCOMES = ("RolledBack", "RollbackFailed")
RUNBOOK = "See the Monitoring section of the control plane's README."

PythonFunctionFactory = Callable[..., lambda_.Function]


def control_plane_metric(
    name: str,
    environment: str,
    statistic: str,
    period: Duration,
    *,
    label: str | None = None,
    **dimensions: str,
) -> cloudwatch.Metric:
    """Return one of the Lambdas' metrics of `environment`, with all of its dimensions."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={"environment": environment, **dimensions, "service": SERVICE_NAME},
        statistic=statistic,
        period=period,
        label=label or " ".join([name, *dimensions.values()]),
    )


def rollbacks_metric(environment: str, period: Duration) -> cloudwatch.MathExpression:
    """Return the environment's rollbacks, RolledBack and RollbackFailed together.

    Each outcome is its own metric. FILL gives a period without a data point the value 0, so
    a period in which only one of the outcomes occurred still counts.
    """
    using = {
        f"m{index}": control_plane_metric("Rollbacks", environment, "Sum", period, outcome=outcome)
        for index, outcome in enumerate(ROLLBACK_OUTCOMES)
    }
    return cloudwatch.MathExpression(
        expression=" + ".join(f"FILL({key}, 0)" for key in using),
        using_metrics=using,
        label=f"rollbacks of {environment}",
        period=period,
    )


class DeploymentMonitoring(Construct):
    """The dashboard, the alarms on the SNS topic, and the scheduled overdue-execution check."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        topic: sns.ITopic,
        control_plane_settings: Settings,
        python_function: PythonFunctionFactory,
    ) -> None:
        super().__init__(scope, construct_id)
        self._state_machine = state_machine
        self._stack_name = Stack.of(self).stack_name
        self._environments = sorted(control_plane_settings.environments)
        self._alarm_action = cloudwatch_actions.SnsAction(topic)
        self._allow_alarms_to_publish(topic)

        self.check_function = self._overdue_check(python_function)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._execution_alarms()
        for environment in self._environments:
            self._environment_alarms(environment)
        self.dashboard = self._dashboard()

    def _allow_alarms_to_publish(self, topic: sns.ITopic) -> None:
        """Let this stack's alarms publish to the topic.

        CloudWatch publishes an alarm's notification as the service cloudwatch.amazonaws.com,
        which only the topic's resource policy can allow. The topic policy that enforce_ssl
        creates replaces SNS's default policy, which allowed the account, and has no such
        statement (AWS Knowledge Center, "Why didn't I receive an SNS notification for my
        CloudWatch alarm trigger?").
        """
        stack = Stack.of(self)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowDeploymentAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name=f"{self._stack_name}-*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )

    # The overdue-execution check

    def _overdue_check(self, python_function: PythonFunctionFactory) -> lambda_.Function:
        """Create the check's function, its least-privilege grant and its schedule."""
        function = python_function(
            "CheckOverdueExecutionsFunction",
            "check_overdue_executions",
            timeout_seconds=check_overdue_executions.CHECK_TIMEOUT_SECONDS,
            environment={
                "STATE_MACHINE_ARN": self._state_machine.state_machine_arn,
                "ENVIRONMENTS_FILE": "environments.json",
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            },
        )
        # It publishes through its log (EMF), so ListExecutions is the only API it calls.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:ListExecutions"],
                resources=[self._state_machine.state_machine_arn],
            )
        )
        self.schedule = events.Rule(
            self,
            "OverdueExecutionsSchedule",
            description="Counts the deployments running past their expected time",
            schedule=events.Schedule.rate(
                Duration.minutes(check_overdue_executions.CHECK_RATE_MINUTES)
            ),
            targets=[events_targets.LambdaFunction(function)],
        )
        return function

    # Alarms

    def _alarm(
        self,
        construct_id: str,
        alarm_name: str,
        description: str,
        metric: cloudwatch.IMetric,
        *,
        evaluation_periods: int = 1,
        treat_missing_data: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        """Create an alarm on at least one event within `evaluation_periods` periods."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self._stack_name}-{alarm_name}",
            alarm_description=f"{description} {RUNBOOK}",
            metric=metric,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=1,
            treat_missing_data=treat_missing_data,
        )
        alarm.add_alarm_action(self._alarm_action)
        self.alarms[alarm_name] = alarm
        return alarm

    def _execution_alarms(self) -> None:
        """Alarm on executions that failed or were stopped, from Step Functions' own metrics."""
        self._alarm(
            "ExecutionsFailedAlarm",
            "executions-failed",
            "A deployment execution failed: every error of the runbook, rollbacks included.",
            self._state_machine.metric_failed(period=EVENT_PERIOD, statistic="Sum"),
        )
        self._alarm(
            "ExecutionsAbortedAlarm",
            "executions-aborted",
            "A deployment execution was stopped (StopExecution) before it released its lock.",
            self._state_machine.metric_aborted(period=EVENT_PERIOD, statistic="Sum"),
        )

    def _environment_alarms(self, environment: str) -> None:
        """Alarm on the environment's rollbacks, opened circuit breaker and overdue runs."""
        self._alarm(
            f"RollbacksAlarm-{environment}",
            f"{environment}-rollbacks",
            f"A deployment of {environment} ended RolledBack or RollbackFailed.",
            rollbacks_metric(environment, EVENT_PERIOD),
        )
        self._alarm(
            f"BreakerOpenedAlarm-{environment}",
            f"{environment}-breaker-opened",
            f"The recovery circuit breaker of {environment} opened.",
            control_plane_metric("BreakerOpened", environment, "Sum", EVENT_PERIOD),
        )
        overdue = self._alarm(
            f"OverdueExecutionsAlarm-{environment}",
            f"{environment}-overdue-executions",
            f"An execution of {environment} runs past expected_execution_seconds.",
            control_plane_metric(
                check_overdue_executions.METRIC_NAME, environment, "Maximum", OVERDUE_PERIOD
            ),
            evaluation_periods=OVERDUE_EVALUATION_PERIODS,
            treat_missing_data=cloudwatch.TreatMissingData.MISSING,
        )
        # Overdue executions are a state, not an event, so the alarm also notifies when the state
        # ends (OK) and when the check stops publishing (INSUFFICIENT_DATA).
        overdue.add_ok_action(self._alarm_action)
        overdue.add_insufficient_data_action(self._alarm_action)

    # Dashboard

    def _dashboard(self) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{self._stack_name}-deployments",
            default_interval=DASHBOARD_INTERVAL,
        )
        dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    f"# Deployments of {self._stack_name}\n"
                    "Executions of the state machine, then one row per environment. "
                    f"Alarms notify the DeploymentEvents topic. {RUNBOOK}"
                ),
                width=24,
                height=2,
            )
        )
        dashboard.add_widgets(*self._execution_widgets())
        for environment in self._environments:
            dashboard.add_widgets(
                cloudwatch.TextWidget(markdown=f"## {environment}", width=24, height=1)
            )
            dashboard.add_widgets(*self._environment_widgets(environment))
        return dashboard

    def _execution_widgets(self) -> list[cloudwatch.IWidget]:
        machine = self._state_machine
        counts = [
            machine.metric_started(label="started"),
            machine.metric_succeeded(label="succeeded"),
            machine.metric_failed(label="failed"),
            machine.metric_timed_out(label="timed out"),
            machine.metric_aborted(label="aborted"),
        ]
        return [
            cloudwatch.GraphWidget(
                title="Executions",
                left=[metric.with_(statistic="Sum", period=DASHBOARD_PERIOD) for metric in counts],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Execution time (ms)",
                left=[
                    machine.metric_time(
                        statistic="Average", period=DASHBOARD_PERIOD, label="average"
                    ),
                    machine.metric_time(
                        statistic="Maximum", period=DASHBOARD_PERIOD, label="maximum"
                    ),
                ],
                width=6,
            ),
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=list(self.alarms.values()), width=6, height=6
            ),
        ]

    def _environment_widgets(self, environment: str) -> list[cloudwatch.IWidget]:
        def metric(
            name: str, statistic: str, label: str | None = None, **dimensions: str
        ) -> cloudwatch.Metric:
            return control_plane_metric(
                name, environment, statistic, DASHBOARD_PERIOD, label=label, **dimensions
            )

        # One series per state that any deployment entered, without listing the states here.
        # NOTE: the designator environment="..." follows CloudWatch's search expression syntax
        # for dimension names; no test can run a search, because the sandbox has no CloudWatch.
        phases = cloudwatch.SearchExpression(
            expression=(
                f"SEARCH('{{{NAMESPACE},environment,service,state}} "
                f'MetricName="PhaseDuration" environment="{environment}"\', '
                f"'Average', {int(DASHBOARD_PERIOD.to_seconds())})"
            ),
            label="",
        )
        return [
            cloudwatch.GraphWidget(
                title=f"{environment}: deployment time and readiness wait (s)",
                left=[
                    metric("DeploymentDuration", "Average", "deployment, average"),
                    metric("DeploymentDuration", "Maximum", "deployment, maximum"),
                    metric("ReadinessWait", "Average", "readiness wait, average"),
                ],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{environment}: time per state (s, average)",
                left=[phases],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{environment}: plans chosen",
                left=[metric("PlansChosen", "Sum", plan=plan) for plan in typing.get_args(Plan)],
                stacked=True,
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{environment}: rollbacks, recoveries, breaker, overdue",
                left=[
                    *[metric("Rollbacks", "Sum", outcome=outcome) for outcome in ROLLBACK_OUTCOMES],
                    metric("Recoveries", "Sum"),
                    metric("BreakerOpened", "Sum"),
                    control_plane_metric(
                        check_overdue_executions.METRIC_NAME,
                        environment,
                        "Maximum",
                        OVERDUE_PERIOD,
                    ),
                ],
                width=6,
            ),
        ]
