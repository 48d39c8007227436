"""`radgenome serve`: a local, read-only web page over one snapshot (`warehouse.web.app.create_app`).

`app` holds the routes (console, named-query forms, downloads, exports, case pages) and `cases` what
a case page shows (report, regions, masks as crops, slices); `static/` the pages, and `static/vendor/`
the browser viewer `make web` vendors (NiiVue and its licences).
"""
