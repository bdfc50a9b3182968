#!/bin/sh
# The Evaluate processing job's program, run from the unpacked code tarball (pipeline/definition.py):
# install what the image lacks, as the training toolkit does before train.py, then score the model.
#   sh run_evaluate.sh --model /opt/ml/processing/model/model.tar.gz --data ... --output ...
set -eu
here=$(dirname "$0")
if [ -f "$here/requirements.txt" ]; then
  python3 -m pip install -q -r "$here/requirements.txt"
fi
exec python3 "$here/evaluate.py" "$@"
