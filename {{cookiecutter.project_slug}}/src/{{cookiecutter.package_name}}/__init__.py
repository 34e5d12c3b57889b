"""{{ cookiecutter.package_name }}: a Lambda function that processes each event once."""
