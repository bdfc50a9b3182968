"""Code shared by the Lambda functions, the `pipeline` package and the training code.

Pure Python plus PyYAML and boto3: it ships in the functions' layer, in the training-code
tarball, and in the installed `yolopipe` package, so it must never import sagemaker, torch or
ultralytics.
"""
