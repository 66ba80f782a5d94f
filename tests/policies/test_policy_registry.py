"""Spec grammar: canonical names round-trip, defaults, and one-line ConfigErrors."""

from __future__ import annotations

import pytest

from sim.errors import ConfigError
from sim.policies.base import Policy
from sim.policies.registry import (
    DEFAULT_POLICY_SPECS,
    POLICY_NAMES,
    all_policy_specs,
    make_policy,
    parse_policy_spec,
    policy_help,
)


def test_names_and_default_set():
    assert set(POLICY_NAMES) == {"nospec", "static", "threshold", "disable-by-batch", "smartspec",
                                 "adaspec", "adaspec-nv", "oracle", "vllm-v1", "trtllm", "sglang"}
    assert not {"vllm-v1", "trtllm", "sglang"} & {s.partition(":")[0] for s in all_policy_specs()}
    assert all_policy_specs() == DEFAULT_POLICY_SPECS
    for spec in all_policy_specs():
        pol = make_policy(spec)
        assert isinstance(pol, Policy)
        assert pol.name == spec
        assert make_policy(pol.name).name == pol.name
    assert len(policy_help().splitlines()) == len(POLICY_NAMES)


@pytest.mark.parametrize("spec, name", [
    ("STATIC:5", "static:5"),
    (" threshold : 0.7 , 6 ", "threshold:0.7,6"),
    ("threshold:k=4", "threshold:0.6,4"),
    ("disable-by-batch:k=3,b=16", "disable-by-batch:3,16"),
    ("smartspec", "smartspec:8"),
    ("smartspec:6,rate=ema,weight=0.2", "smartspec:6,rate=ema,weight=0.2"),
    ("smartspec:8,artifact", "smartspec:8,artifact"),
    ("smartspec:8,rate=cumulative,alpha0=0.7,recover=reset,plain_bias=1.1", "smartspec:8,artifact"),
    ("smartspec:8,artifact,plain_bias=1", "smartspec:8,alpha0=0.7,recover=reset"),
    ("smartspec:8,recover=probe,recover_after=32", "smartspec:8,recover=probe,recover_after=32"),
    ("smartspec:8,recover=decay,recover_after=64", "smartspec:8"),
    ("adaspec:8,artifact", "adaspec:8,artifact"),
    ("adaspec:8,cbar=ema,recover=probe", "adaspec:8,cbar=ema,recover=probe"),
    ("adaspec:8,slo=strict,lost=plain", "adaspec:8,slo=strict,lost=plain"),
    ("adaspec:k=8,slo=strict,trim=request", "adaspec:8,slo=strict,trim=request"),
    ("adaspec:4,slo=tokens,trim=off", "adaspec:4,slo=tokens,trim=off"),
    ("adaspec-nv", "adaspec-nv:8"),
    ("adaspec-nv:8,artifact", "adaspec-nv:8,artifact"),
    ("adaspec-nv:8,artifact,recover=decay", "adaspec-nv:8"),
    ("oracle", "oracle:8"),
    ("VLLM-V1:3, SCHED=1-64:3/65-128:1/129-512:0", "vllm-v1:3"),
    ("trtllm:k=4,cap=16", "trtllm:4,cap=16"),
    ("sglang:3,tax=0.1", "sglang:3,tax=0.1"),
])
def test_spec_parsing(spec, name):
    assert make_policy(spec).name == name


def test_k_max_and_flags():
    assert make_policy("static:3").k_max == 3
    assert make_policy("adaspec").k_max == 8
    assert make_policy("nospec").uses_draft is False
    assert make_policy("oracle:4").needs_oracle is True
    assert not make_policy("adaspec:8").needs_oracle
    kind, kwargs = parse_policy_spec("adaspec:6,artifact")
    assert kind.name == "adaspec" and kwargs == {"k": 6, "slo": "off", "trim": "request",
                                                 "cbar": "cumulative", "recover": "none"}


@pytest.mark.parametrize("spec", [
    "", "   ", "foo", "foo:1", "static", "static:0", "static:65", "static:x", "static:5.0",
    "static:5,6", "static:5,", "static:,5", "threshold:1.5", "threshold:0.6,0", "threshold:abc",
    "disable-by-batch:5", "disable-by-batch:5,0", "smartspec:8,alpha0=2", "smartspec:8,weight=0",
    "adaspec:8,slo=maybe", "adaspec:8,trim=x", "adaspec:8,foo=1", "adaspec:k=8,8", "adaspec:8,k=8",
    "adaspec:8,cbar0=", "adaspec-nv:8,trim=token", "oracle:100", "nospec:1", "adaspec:8,verifier",
    "smartspec:8,weight=0.2", "smartspec:8,rate=sometimes", "smartspec:8,plain_bias=3",
    "smartspec:8,recover=later", "smartspec:8,recover=none,recover_after=8",
    "smartspec:8,recover_after=0", "adaspec:8,cbar=median", "adaspec:8,cbar=cumulative,cbar_weight=0.2",
    "adaspec:8,recover=reset,recover_after=4", "adaspec:8,recover_after=x", "adaspec:8,lost=plain",
    "vllm-v1:0", "vllm-v1:3,sched=2-8:3", "vllm-v1:3,foo=1", "vllm-v1:3,4", "trtllm:4,cap=x",
    "trtllm:4,threshold=abc,window=2", "sglang:3,slots=", "sglang:3,ema=x", "vllm-v1:3,tax=20",
])
def test_bad_specs_are_one_line_config_errors(spec):
    with pytest.raises(ConfigError) as err:
        make_policy(spec)
    assert "\n" not in str(err.value) and str(err.value)
