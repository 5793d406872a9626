"""Domain logic of the Prêt à dépenser credit-scoring platform: contract, data, features, models, serving helpers."""
