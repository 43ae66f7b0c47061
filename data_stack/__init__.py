"""Infrastructure only: the five CDK stacks, their constructs and the typed config."""
