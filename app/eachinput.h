// SPDX-License-Identifier: MIT
#pragma once

#include <QByteArray>
#include <QObject>
#include <QString>

QT_BEGIN_NAMESPACE
class QSocketNotifier;
QT_END_NAMESPACE

namespace taskdeck {

/*!
 * The input of run --each, a line at a time, never all of it in memory.
 *
 * A regular file is read in chunks as lines are asked for. Standard input that is a pipe or
 * a terminal is read as data arrives, without blocking the event loop: next() answers Wait
 * until a whole line is there, and readyRead() tells when to ask again (only while lines
 * are wanted, so a fast producer is held back by the pipe, not by memory here).
 */
class EachInput final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(EachInput)

public:
    enum class Next { Line, Wait, End, Error };

    /*! No line may be longer than this; a longer one ends the input with an error. */
    static constexpr qsizetype MaxLineBytes = 8 * 1024 * 1024;

    explicit EachInput(QObject *parent = nullptr);
    ~EachInput() override;

    /*! Opens \a path, or standard input for "-". False with errorString() set otherwise. */
    bool open(const QString &path);

    /*! The next line, without its line break, in \a line; or why there is none. */
    Next next(QByteArray *line);

    /*! Whether the caller wants more lines now: only then is a stream read. */
    void setWanted(bool wanted);

    int lineNumber() const { return m_lineNumber; }   //!< of the last line returned
    bool isStream() const { return m_stream; }         //!< a pipe or terminal, not a file
    bool atEnd() const;                                  //!< End or Error was returned
    QString errorString() const { return m_error; }

    /*!
     * The number of lines with something besides whitespace in a regular file, counted in
     * a pass of its own; -1 for a stream.
     */
    qint64 countNonEmptyLines();

Q_SIGNALS:
    /*! Data, the end or an error arrived on a stream while lines were wanted. */
    void readyRead();

private:
    bool fill();       // reads one chunk; false at the end or on an error
    void readStream(); // the notifier's slot

    QString m_path;
    int m_fd = -1;
    bool m_ownsFd = false;
    bool m_stream = false;
    bool m_eof = false;
    bool m_failed = false;
    bool m_ended = false;
    QByteArray m_buffer;
    qsizetype m_pos = 0; // where the next line starts in m_buffer
    int m_lineNumber = 0;
    QString m_error;
    QSocketNotifier *m_notifier = nullptr;
};

} // namespace taskdeck
