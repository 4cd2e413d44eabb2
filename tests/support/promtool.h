/* Checks with the real promtool (Debian package prometheus) in cmocka tests. */
#ifndef RM_TEST_PROMTOOL_H
#define RM_TEST_PROMTOOL_H

/* Fails the current test unless `promtool check metrics` accepts text. */
void assert_promtool_accepts(const char *text);

#endif
