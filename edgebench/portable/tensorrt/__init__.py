"""TensorRT on the host and on the device: GPU-free rules (:mod:`.rules`) and the builder and engine (:mod:`.engine`)."""
