"""What the PyTorch inference image's model server does with a model, run in-process in .venv-toolkit.

    python serving_driver.py REQUESTS.json RESPONSES.json

As the image starts (sagemaker_pytorch_serving_container.torchserve.start_torchserve): install
/opt/ml/model/code/requirements.txt with the command of sagemaker_inference.model_server.
_install_requirements (that module imports pkg_resources, which setuptools 81+ in this venv no longer
has; the image's older setuptools does), then,
as a TorchServe worker does (ts.model_service_worker), load the model with TorchServe's own
TsModelLoader and the handler the image configures (`sagemaker_pytorch_serving_container.
handler_service:handle`, its HandlerService: initialize(context) -> model_fn), and answer each
request as Service.predict does: TorchServe's retrieve_data_for_inference builds the batch and the
context's request headers, then the handler's handle(data, context) runs input_fn -> predict_fn ->
output_fn. Only the socket and the Java frontend are left out (PYTHONPATH=/opt/ml/model/code is
what start_torchserve exports for the worker).

REQUESTS.json: [{"content_type", "accept", "body_file"}]; RESPONSES.json: [{"status", "phrase",
"content_type", "body"}] in the same order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MODEL_DIR = "/opt/ml/model"
HANDLER = "sagemaker_pytorch_serving_container.handler_service:handle"


def main(requests_file: str, responses_file: str) -> int:
    import ts
    from sagemaker_inference import environment
    from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl
    from ts.model_loader import ModelLoaderFactory
    from ts.service import Service

    subprocess.check_call([sys.executable, "-m", "pip", "install", "-r",
                           os.path.join(environment.code_dir, "requirements.txt")])
    metrics = MetricsCacheYamlImpl(config_file_path=str(Path(ts.__file__).parent / "configs" / "metrics.yaml"))
    metrics.initialize_cache()
    service = ModelLoaderFactory.get_model_loader().load("model", MODEL_DIR, HANDLER, None, 1, None, True, metrics)
    responses = []
    for index, request in enumerate(json.loads(Path(requests_file).read_text())):
        body = bytearray(Path(request["body_file"]).read_bytes())
        batch = [{
            "requestId": f"request-{index}".encode(),
            "parameters": [{"name": "body", "contentType": request["content_type"], "value": body}],
            "headers": [{"name": b"Content-Type", "value": request["content_type"].encode()},
                        {"name": b"Accept", "value": request["accept"].encode()}],
        }]
        headers, input_batch, ids = Service.retrieve_data_for_inference(batch)
        service.context.request_ids = ids
        service.context.request_processor = headers
        service.context.metrics.request_ids = ids
        [answer] = service._entry_point(input_batch, service.context)
        code, phrase = service.context.get_response_status(0)
        content_type = service.context.get_response_content_type(0)
        text = answer if isinstance(answer, str) else bytes(answer).decode("utf-8", "replace")
        responses.append({"status": code, "phrase": phrase, "content_type": content_type, "body": text})
    Path(responses_file).write_text(json.dumps(responses))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
