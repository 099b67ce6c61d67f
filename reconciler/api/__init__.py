"""The shapes everything else speaks: manifest models, status, observations, actions, errors."""
