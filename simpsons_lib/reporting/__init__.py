"""What a reader sees: the exploration's statistics, tables, narrative text, plots, Grad-CAM, the report's
computations and the index page. Only re-renders: nothing here is part of a training key."""
