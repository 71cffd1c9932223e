"""Reading and writing audio, images, video and output files."""
