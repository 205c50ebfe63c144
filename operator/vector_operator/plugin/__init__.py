"""`kubectl vector`: the kubectl plugin SREs use to see and steer the operator's resources."""
