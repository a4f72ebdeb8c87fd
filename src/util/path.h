/* path: slash-separated path names the way Go's path/filepath does them on Unix, so that paths lookout
 * derives from a configuration (file_sd's __meta_filepath, credential files) read exactly as Prometheus
 * derives them. Pure functions, no file system access. */
#ifndef LOOKOUT_UTIL_PATH_H
#define LOOKOUT_UTIL_PATH_H

/* filepath.Clean: the shortest equivalent name by lexical processing only: repeated slashes become one,
 * "." elements go, ".." removes the element before it (or stays, leading a relative path; after the root
 * it goes), no trailing slash except for "/" itself; "" becomes ".". Glob metacharacters are ordinary
 * characters. Returns a new string (caller frees). */
char *path_clean(const char *p);

/* filepath.Join of two elements: empty elements are ignored, the rest joined with "/" and cleaned; ""
 * when both are empty. Caller frees. */
char *path_join(const char *a, const char *b);

#endif
