"""The wiring: the control loop, the executor, the run runner, the guard keeper, apply."""
