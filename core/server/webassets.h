// SPDX-License-Identifier: MIT
#pragma once

#include <QByteArray>
#include <QString>

namespace taskdeck {

/*!
 * The admin pages' files (HTML, CSS, JS, icons and the ANSI renderer), compiled into the
 * server as Qt resources under ":/taskdeck/web/". Looked up by their path below that root;
 * each is read once and kept with its content type and an ETag of its bytes.
 *
 * Main thread only (the server's handlers run there).
 */
class WebAssets final
{
public:
    struct Asset
    {
        QByteArray body;
        QByteArray contentType; //!< "text/css; charset=utf-8", "image/svg+xml", ...
        QByteArray etag;        //!< a quoted strong validator of body
    };

    /*! The file at \a path ("app.css", "icons/cpu.svg", "pages/tasks.html"), or null when
     *  there is none (a path with ".." never names one). */
    static const Asset *find(const QString &path);

    /*!
     * Whether an Accept header asks for a page rather than JSON: text/html must be
     * acceptable and weigh more than application/json. The wildcard type alone, a missing header or
     * "application/json" keep the JSON API.
     */
    static bool prefersHtml(const QByteArray &accept);

    /*! The content type of a file named \a path, from its extension. */
    static QByteArray contentTypeOf(const QString &path);
};

} // namespace taskdeck
