"""template.yaml's Pipeline resource, as SAM transforms it: a redeploy that changed the function's
package changes a property of the custom resource (CloudFormation sends an Update only then), an
unchanged one does not; the service token stays put (CloudFormation cannot update it)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
SAM_PYTHON = REPO / ".venv-sam" / "bin" / "python"

# Runs in the SAM CLI's environment (it pins its own boto3): the SAM translator CloudFormation runs.
_TRANSFORM = """
import copy, json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        return {}

template = yaml_parse(open(sys.argv[1]).read())
pseudo = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
          "AWS::StackName": "yolopipe", "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/y/a-b"}
out = []
for package in sys.argv[2:]:
    copy_ = copy.deepcopy(template)
    for name, resource in copy_["Resources"].items():
        properties = resource.get("Properties", {})
        if "CodeUri" in properties:  # what `sam deploy` puts there: the package's content-addressed key
            properties["CodeUri"] = "s3://artifacts/" + (package if name == "DeployFunction" else "other.zip")
        if "ContentUri" in properties:
            properties["ContentUri"] = "s3://artifacts/layer.zip"
    resources = transform(copy_, pseudo, NoManagedPolicies())["Resources"]
    out.append({"pipeline": resources["Pipeline"]["Properties"],
                "retry": [r["Properties"] for r in resources.values()
                          if r["Type"] == "AWS::Lambda::EventInvokeConfig"
                          and r["Properties"]["FunctionName"] == {"Ref": "DeployFunction"}]})
print(json.dumps(out))
"""


@pytest.mark.skipif(not SAM_PYTHON.exists(), reason="needs the SAM CLI environment (make install)")
def test_a_changed_build_changes_the_pipeline_resource_and_an_unchanged_one_does_not():
    """GIVEN template.yaml WHEN SAM transforms it for three packages of the deploy function (A, B, A
    again) THEN the Pipeline resource's CodeVersion differs between A and B and is equal for A and A;
    its ServiceToken is the same unqualified function ARN; it gives up after ServiceTimeout 600 s; and
    Lambda does not retry the function's asynchronous invocations on $LATEST."""
    process = subprocess.run(
        [str(SAM_PYTHON), "-c", _TRANSFORM, str(REPO / "template.yaml"), "a1b2.zip", "c3d4.zip", "a1b2.zip"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert process.returncode == 0, process.stderr[-3000:]
    package_a, package_b, package_a_again = json.loads(process.stdout.strip().splitlines()[-1])
    first, second = package_a["pipeline"], package_b["pipeline"]
    assert first["CodeVersion"] != second["CodeVersion"]
    assert first["CodeVersion"]["Ref"].startswith("DeployFunctionVersion")
    assert first["ServiceToken"] == second["ServiceToken"] == {"Fn::GetAtt": ["DeployFunction", "Arn"]}
    assert first["ServiceTimeout"] == 600
    assert package_a["retry"] == [{"FunctionName": {"Ref": "DeployFunction"}, "Qualifier": "$LATEST",
                                         "MaximumRetryAttempts": 0}]
    assert package_a_again == package_a  # an unchanged build: same properties, no Update
