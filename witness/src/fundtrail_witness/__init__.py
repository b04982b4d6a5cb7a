"""fundtrail's transparency-log witness: run by an audit bureau with its own key, not the operator's."""
