/* The playground's embedded files: the table the build makes from web/playground, and the
 * mapping from request paths to it, which must never name anything but a table entry
 * (traversal attempts, empty or hidden names, sub-paths all map to nothing). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "server/webui.h"

static void test_table(void) {
    static const struct {
        const char *name, *type;
    } files[] = {
        {"index.html", "text/html; charset=utf-8"},
        {"app.js", "text/javascript; charset=utf-8"},
        {"markdown.js", "text/javascript; charset=utf-8"},
        {"sse.js", "text/javascript; charset=utf-8"},
        {"style.css", "text/css; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const srv_web_asset *a = srv_web_asset_find(files[i].name);
        CHECK_MSG(a && !strcmp(a->content_type, files[i].type), "%s: %s", files[i].name,
                  a ? a->content_type : "missing");
        /* the bytes are the file's: non-empty, and the table's length excludes the trailing NUL */
        CHECK_MSG(a && a->size > 100 && a->data[a->size] == 0 && strlen((const char *)a->data) == a->size,
                  "%s: %zu bytes", files[i].name, a ? a->size : 0);
    }
    const srv_web_asset *index = srv_web_asset_find("index.html");
    CHECK(index && !strncmp((const char *)index->data, "<!doctype html>", 15));
    CHECK(!srv_web_asset_find("") && !srv_web_asset_find("nope.js") && !srv_web_asset_find("INDEX.HTML"));
}

static void test_paths(void) {
    CHECK(srv_web_asset_for_path("/") == srv_web_asset_find("index.html"));
    CHECK(srv_web_asset_for_path("/webui/app.js") == srv_web_asset_find("app.js"));
    CHECK(srv_web_asset_for_path("/webui/index.html") == srv_web_asset_find("index.html"));
    static const char *const nothing[] = {
        "", "/index.html", "/app.js", "/webui", "/webui/", "/webui/.", "/webui/..", "/webui/../index.html",
        "/webui/../../etc/passwd", "/webui/./app.js", "/webui//app.js", "/webui/app.js/", "/webui/app.js/..",
        "/webui/.hidden", "/webui/..\\..\\etc\\passwd", "/webui/%2e%2e/app.js", "/WEBUI/app.js", "//",
        "/webui/app.js\n", "/webui/app.js ", "/webui/style.css/../app.js", "/webuiapp.js", "webui/app.js",
    };
    for (size_t i = 0; i < sizeof nothing / sizeof nothing[0]; i++)
        CHECK_MSG(!srv_web_asset_for_path(nothing[i]), "'%s' maps to a file", nothing[i]);
}

int main(void) {
    test_table();
    test_paths();
    CHECK_DONE();
}
