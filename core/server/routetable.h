// SPDX-License-Identifier: MIT
#pragma once

#include <QByteArray>
#include <QList>
#include <QString>
#include <QStringList>

#include <functional>

namespace taskdeck {

/*!
 * The admin server's routes, declared in one table: method, path pattern, whether it is
 * public, and the handler. A pattern is a path whose segments may be "{name}" (one
 * non-empty, URL-decoded segment). Anything not listed is not served.
 */
template<typename Handler>
class RouteTable final
{
public:
    struct Route
    {
        QByteArray method;     //!< "GET", "POST"; GET routes answer HEAD too
        QString pattern;
        bool isPublic = false; //!< no credentials needed
        bool webSocket = false;
        Handler handler;
    };

    struct Match
    {
        const Route *route = nullptr; //!< null: no route for this method
        QStringList params;
        QByteArray allow;             //!< the methods the path has (when route is null); empty: unknown path
    };

    void add(Route route)
    {
        m_parts.append(route.pattern.split(u'/'));
        m_routes.append(std::move(route));
    }
    const QList<Route> &routes() const { return m_routes; }

    /*! Finds the route of \a method (HEAD finds GET's) and \a segments (decoded). */
    Match match(const QByteArray &method, const QStringList &segments) const
    {
        Match found;
        QList<QByteArray> allowed;
        for (qsizetype i = 0; i < m_routes.size(); ++i) {
            const Route &route = m_routes.at(i);
            QStringList params;
            if (!matches(m_parts.at(i), segments, &params))
                continue;
            if (!allowed.contains(route.method))
                allowed.append(route.method);
            if (route.method == "GET" && !allowed.contains("HEAD"))
                allowed.append("HEAD");
            if (!found.route && (route.method == method || (method == "HEAD" && route.method == "GET"))) {
                found.route = &route;
                found.params = params;
                // The methods are only needed to refuse one: the first match is the answer.
                found.allow = route.method;
                return found;
            }
        }
        found.allow = allowed.join(", ");
        return found;
    }

private:
    static bool matches(const QStringList &parts, const QStringList &segments, QStringList *params)
    {
        if (parts.size() != segments.size())
            return false;
        for (qsizetype i = 0; i < parts.size(); ++i) {
            const QString &part = parts.at(i);
            if (part.startsWith(u'{') && part.endsWith(u'}')) {
                if (segments.at(i).isEmpty())
                    return false;
                params->append(segments.at(i));
            } else if (part != segments.at(i)) {
                return false;
            }
        }
        return true;
    }

    QList<Route> m_routes;
    QList<QStringList> m_parts; // each route's pattern, split at '/'
};

} // namespace taskdeck
