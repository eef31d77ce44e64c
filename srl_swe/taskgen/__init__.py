"""Task generation (issue 12): executable SWE tasks from bugs injected into real packages."""
