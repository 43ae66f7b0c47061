"""The one way to acknowledge a cdk-nag finding: with a reason, and with an id computed
from the stack's own tokens.

cdk-nag 3.x (a CDK validation plugin) reports a granular finding as
``<rule>[<kind>::<flattened value>]``, for example

    AwsSolutions-IAM5[Resource::<ProducerFunction96264A1C.Arn>:*]
    AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]

and it only counts an acknowledgement whose id is exactly that string. Writing those ids
by hand bakes in a hashed logical id, an account, a region or an export name, and breaks
as soon as any of them changes (another account, another region, a renamed construct).
``acknowledge(..., resource=token)`` instead resolves the token in the scope's stack and
renders it the way cdk-nag 3.0.2 does (``lib/utils/flatten-cfn-reference.js``):

- a plain string: ``${`` becomes ``<`` and ``}`` becomes ``>`` (Fn::Sub syntax);
- ``{"Fn::Join": [d, items]}``: the items rendered and joined with ``d``;
- ``{"Fn::Sub": s}``: ``s`` rendered;
- ``{"Fn::GetAtt": [id, attr]}``: ``<id.attr>``;
- ``{"Fn::ImportValue": name}``: ``name`` rendered;
- ``{"Ref": id}``: ``<id>`` (pseudo parameters too: ``<AWS::Partition>``);
- anything else: compact JSON (JavaScript's ``JSON.stringify``).

The id is computed late, while the construct tree is validated (after CDK has resolved
cross-stack references and every logical id is final, before the validation plugins
run), so an import from another stack renders as that stack's export name, whatever it
is, and ``override_logical_id`` calls made after ``acknowledge`` still count.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from constructs import IConstruct, IValidation

MIN_REASON_LENGTH = 20

# What `resource=` / `policy=` accept: a string (literal, or with tokens), an IResolvable,
# an IAM managed policy (its ARN), or a sequence of those (e.g. a statement's resources).
Resolvable = str | cdk.IResolvable | iam.IManagedPolicy
Resources = Resolvable | Sequence[Resolvable]


def flatten_cfn_reference(value: Any) -> str:
    """cdk-nag 3.0.2's flattenCfnReference, on an already resolved CloudFormation value."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, dict):
        if value.get("Fn::Join"):
            delimiter, items = value["Fn::Join"]
            return str(delimiter).join(flatten_cfn_reference(i) for i in items)
        if value.get("Fn::Sub"):
            return flatten_cfn_reference(value["Fn::Sub"])
        if value.get("Fn::GetAtt"):
            resource, attribute = value["Fn::GetAtt"]
            return f"<{flatten_cfn_reference(resource)}.{flatten_cfn_reference(attribute)}>"
        if value.get("Fn::ImportValue"):
            return flatten_cfn_reference(value["Fn::ImportValue"])
        if value.get("Ref"):
            return f"<{flatten_cfn_reference(value['Ref'])}>"
    return _js_json(value)


def _js_json(value: Any) -> str:
    """JSON.stringify(value): compact, keys in insertion order, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _as_list(value: Resources) -> list[Resolvable]:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]  # type: ignore[list-item]


def _is_managed_policy(value: object) -> bool:
    return hasattr(value, "managed_policy_arn") and not isinstance(value, str)


def render(scope: IConstruct, value: Resolvable) -> str:
    """`value` resolved in `scope`'s stack and flattened as cdk-nag flattens it."""
    if _is_managed_policy(value):
        value = value.managed_policy_arn  # type: ignore[union-attr]
    return flatten_cfn_reference(cdk.Stack.of(scope).resolve(value))


def finding_ids(
    scope: IConstruct,
    rule: str,
    *,
    resource: Resources | None = None,
    policy: Resources | None = None,
    action: str | Iterable[str] | None = None,
) -> list[str]:
    """The finding ids cdk-nag reports for `rule` on these values, rendered now.

    `resource` gives ``Resource::`` findings (only values containing '*' are findings,
    as in AwsSolutions-IAM5), `policy` gives ``Policy::`` findings (AwsSolutions-IAM4),
    `action` gives ``Action::`` findings (literal action names). With none of them, the
    bare rule id. Call it after the tree is prepared (acknowledge() does) when a value
    refers to another stack or to a logical id that may still be overridden."""
    ids: list[str] = []
    if resource is not None:
        rendered = [render(scope, r) for r in _as_list(resource)]
        ids += [f"{rule}[Resource::{r}]" for r in rendered if "*" in r]
    if policy is not None:
        ids += [f"{rule}[Policy::{render(scope, p)}]" for p in _as_list(policy)]
    if action is not None:
        ids += [f"{rule}[Action::{a}]" for a in ([action] if isinstance(action, str) else action)]
    if resource is None and policy is None and action is None:
        ids.append(rule)
    return list(dict.fromkeys(ids))


@jsii.implements(IValidation)
class _LateAcknowledgement:
    """Acknowledges when the tree is validated: after prepare (references resolved,
    logical ids final), before the validation plugins (cdk-nag) read the metadata."""

    def __init__(self, scope: IConstruct, rule: str, reason: str, kwargs: dict[str, Any]) -> None:
        self._scope, self._rule, self._reason, self._kwargs = scope, rule, reason, kwargs
        self.ids: list[str] | None = None

    def validate(self) -> list[str]:
        if self.ids is None:  # once, even when the app is synthesized twice
            self.ids = finding_ids(self._scope, self._rule, **self._kwargs)
            _record(self._scope, self.ids, self._reason)
        return []


def _record(scope: IConstruct, ids: Iterable[str], reason: str) -> None:
    for finding in ids:
        cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


def acknowledge(
    scope: IConstruct,
    rule: str,
    reason: str,
    *,
    resource: Resources | None = None,
    policy: Resources | None = None,
    action: str | Iterable[str] | None = None,
) -> None:
    """Acknowledge cdk-nag `rule` on `scope` (and everything below it), with `reason`.

    - ``acknowledge(bucket, "AwsSolutions-S1", why)``: the whole rule.
    - ``acknowledge(policy, "AwsSolutions-IAM5", why, resource=fn.function_arn + ":*")``:
      the finding for that resource, id computed from the token
      (``AwsSolutions-IAM5[Resource::<Fn1234ABCD.Arn>:*]`` here, whatever the hash).
    - ``resource=`` also takes a list, e.g. a statement's resources: one finding each
      (values without '*' are not findings and are skipped).
    - ``policy=`` takes a managed policy or its ARN: ``AwsSolutions-IAM4[Policy::...]``.
    - ``action=``: ``AwsSolutions-IAM5[Action::s3:List*]``.

    Values with tokens are rendered when the tree is validated (see the module doc);
    literal values at once. The reason must say why (at least 20 characters)."""
    if not reason or len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"acknowledgement of {rule} on {scope.node.path} needs a real reason (>= {MIN_REASON_LENGTH} chars)")
    if "[" in rule:
        raise ValueError(f"pass the bare rule ({rule.split('[')[0]}) and the value as resource=/policy=/action=, not a hand-written id")
    kwargs: dict[str, Any] = {"resource": resource, "policy": policy, "action": action}
    values = [v for k in ("resource", "policy") if kwargs[k] is not None for v in _as_list(kwargs[k])]
    if any(_is_managed_policy(v) or cdk.Token.is_unresolved(v) for v in values):
        scope.node.add_validation(_LateAcknowledgement(scope, rule, reason, kwargs))
    else:
        _record(scope, finding_ids(scope, rule, **kwargs), reason)


def acknowledged_ids(scope: IConstruct) -> dict[str, str]:
    """Every acknowledgement id recorded on `scope` and below -> its reason (for tests
    and reports; call it after synth so late acknowledgements are in)."""
    found: dict[str, str] = {}
    for c in scope.node.find_all():
        for entry in c.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY and entry.data:
                for key, why in dict(entry.data).items():
                    found[key.split("::", 1)[1] if key.lower().startswith("annotation::") else key] = why
    return found
