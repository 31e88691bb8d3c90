"""The yearly campaign (art. 13): the notice, the window, the progress per county."""
