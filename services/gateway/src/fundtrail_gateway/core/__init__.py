"""Pure gateway logic: authorization, region scoping, cursors, problems, case transitions. No I/O."""
