"""Stage 3: a segmentation network trained on pseudomasks, refined iteratively."""
