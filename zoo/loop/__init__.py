"""The loop from served traffic back to the trainer: request logs to rows (`logs`)."""
