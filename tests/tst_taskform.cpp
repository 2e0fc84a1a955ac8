// SPDX-License-Identifier: MIT
#include "confirmdialogs.h"
#include "fieldeditors.h"
#include "messagebanner.h"
#include "taskform.h"
#include "taskpage.h"
#include "theme.h"

#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDateTimeEdit>
#include <QDir>
#include <QJsonArray>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTemporaryFile>
#include <QTest>
#include <QTimeZone>
#include <QToolButton>
#include <QAction>

#include <cstdlib>
#include <ctime>

using namespace Qt::StringLiterals;
using namespace taskdeck;
using namespace taskdeck::ui;

namespace {

// 2^62 + 1: beyond what a double holds exactly, well inside qint64.
constexpr qint64 BigInteger = 4611686018427387905LL;

Fields everyField()
{
    return {
        Field(u"name"_s, FieldType::Text)
            .withTitle(u"Name"_s)
            .withDescription(u"Lower-case letters only"_s)
            .withRequired()
            .withPattern(u"[a-z]+"_s)
            .withMax(20)
            .withDefault(u"alice"_s),
        Field(u"notes"_s, FieldType::Textarea).withTitle(u"Notes"_s).withPlaceholder(u"Anything"_s),
        Field(u"count"_s, FieldType::Integer).withTitle(u"Count"_s).withDefault(7),
        Field(u"ratio"_s, FieldType::Number).withTitle(u"Ratio"_s).withMin(0).withMax(1)
            .withDefault(0.5),
        Field(u"verbose"_s, FieldType::Bool).withTitle(u"Verbose"_s).withDefault(true),
        Field(u"format"_s, FieldType::Select)
            .withTitle(u"Format"_s)
            .withChoices({{u"sql"_s, u"SQL Dump"_s}, {u"tar"_s, u"Compressed Archive"_s}})
            .withDefault(u"tar"_s),
        Field(u"parts"_s, FieldType::MultiSelect)
            .withTitle(u"Parts"_s)
            .withChoices({{u"a"_s, u"Alpha"_s}, {u"b"_s, u"Beta"_s}, {u"c"_s, u"Gamma"_s}})
            .withDefault(QJsonArray{u"b"_s}),
        Field(u"input"_s, FieldType::File).withTitle(u"Input"_s).withRequired(),
        Field(u"token"_s, FieldType::Secret).withTitle(u"Token"_s).withDefault(u"s3cret"_s),
        Field(u"when"_s, FieldType::DateTime).withTitle(u"When"_s)
            .withDefault(u"2026-11-26T10:00:00Z"_s),
    };
}

TaskPtr makeTask(const QString &key, Fields fields, const QString &danger = QString(),
                 bool expensive = false)
{
    auto t = std::make_shared<Task>();
    t->key = key;
    t->title = u"Task "_s + key;
    t->description = u"Does something with the fields below."_s;
    t->category = u"testing"_s;
    t->tags = {u"ui"_s, u"forms"_s};
    t->icon = u"system-run"_s;
    t->danger = danger;
    t->expensive = expensive;
    t->fields = std::move(fields);
    t->fn = [](RunContext &) { return QJsonValue(); };
    return t;
}

QLabel *labelFor(const QWidget *root, const QWidget *buddy)
{
    const QList<QLabel *> labels = root->findChildren<QLabel *>();
    for (QLabel *label : labels) {
        if (label->buddy() == buddy)
            return label;
    }
    return nullptr;
}

void typeInto(QWidget *w, const QString &text)
{
    if (auto *line = qobject_cast<QLineEdit *>(w)) {
        line->selectAll();
        QTest::keyClick(line, Qt::Key_Delete);
    }
    QTest::keyClicks(w, text);
}

} // namespace

class TestTaskForm final : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void init();
    void editorForEveryType_data();
    void editorForEveryType();
    void defaultsShown();
    void typedValuesAreAccepted();
    void integerIsExactAtTheLimits();
    void emptyOptionalFieldsAreLeftOut();
    void patternCheckedAsYouType();
    void invalidInputShowsEveryErrorAndRunsNothing();
    void textareaTabMovesFocus();
    void tabOrderFollowsTheForm();
    void pageTabOrderEndsWithTheButtons();
    void runEmitsValues();
    void shortcutsRunAndStart();
    void dangerConfirmation();
    void expensiveAskedOnceAndRemembered();
    void rerunPrefillLeavesSecretsEmpty();
    void startErrorsShown();
    void busyState();
    void secretShowHide();
    void messageBanner();
    void fileDropSetsPath();
    void screenshotWithErrors();

private:
    QTemporaryFile m_file;
    QTemporaryDir m_settingsDir;
};

void TestTaskForm::initTestCase()
{
    // A zone away from UTC, so a date-time that is not converted shows up as wrong.
    qputenv("TZ", "America/New_York");
    tzset();
    QVERIFY(QDateTime(QDate(2026, 11, 26), QTime(10, 0)).offsetFromUtc() != 0);

    QStandardPaths::setTestModeEnabled(true);
    QCoreApplication::setOrganizationName(u"TaskdeckTest"_s);
    QCoreApplication::setApplicationName(u"tst_taskform"_s);
    QSettings::setDefaultFormat(QSettings::IniFormat);
    QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, m_settingsDir.path());
    QVERIFY(m_file.open());
    m_file.write("data");
    m_file.flush();
    QVERIFY(QDir().mkpath(QStringLiteral(TASKDECK_SCREENSHOT_DIR)));
}

void TestTaskForm::init()
{
    QSettings().clear();
}

void TestTaskForm::editorForEveryType_data()
{
    QTest::addColumn<QString>("key");
    QTest::addColumn<QString>("className");
    QTest::newRow("text") << u"name"_s << u"QLineEdit"_s;
    QTest::newRow("textarea") << u"notes"_s << u"QPlainTextEdit"_s;
    QTest::newRow("integer") << u"count"_s << u"QLineEdit"_s;
    QTest::newRow("number") << u"ratio"_s << u"QLineEdit"_s;
    QTest::newRow("bool") << u"verbose"_s << u"QCheckBox"_s;
    QTest::newRow("select") << u"format"_s << u"QComboBox"_s;
    QTest::newRow("multiselect") << u"parts"_s << u"QListWidget"_s;
    QTest::newRow("file") << u"input"_s << u"QLineEdit"_s;
    QTest::newRow("secret") << u"token"_s << u"QLineEdit"_s;
    QTest::newRow("datetime") << u"when"_s << u"QDateTimeEdit"_s;
}

void TestTaskForm::editorForEveryType()
{
    QFETCH(QString, key);
    QFETCH(QString, className);
    TaskForm form;
    const TaskPtr task = makeTask(u"all"_s, everyField());
    form.setTask(task);
    QWidget *editor = form.editor(key);
    QVERIFY(editor);
    QCOMPARE(QString::fromLatin1(editor->metaObject()->className()), className);

    const Field *field = nullptr;
    for (const Field &f : task->fields) {
        if (f.key == key)
            field = &f;
    }
    QVERIFY(field);
    QLabel *label = labelFor(&form, editor);
    QVERIFY2(label, "the editor is its label's buddy");
    QVERIFY(label->text().startsWith(u'&'));
    QCOMPARE(label->text().endsWith(u" *"_s), field->required);
    QCOMPARE(editor->accessibleName(), field->label());
    QCOMPARE(editor->accessibleDescription().contains(u"Required"_s), field->required);
    QVERIFY(editor->focusPolicy() & Qt::TabFocus);
}

void TestTaskForm::defaultsShown()
{
    TaskForm form;
    form.setTask(makeTask(u"all"_s, everyField()));
    auto *name = qobject_cast<QLineEdit *>(form.editor(u"name"_s));
    QCOMPARE(name->text(), u"alice"_s);
    QCOMPARE(name->maxLength(), 20);
    QCOMPARE(qobject_cast<QLineEdit *>(form.editor(u"count"_s))->text(), u"7"_s);
    QCOMPARE(qobject_cast<QLineEdit *>(form.editor(u"ratio"_s))->text(), u"0.5"_s);
    QVERIFY(qobject_cast<QCheckBox *>(form.editor(u"verbose"_s))->isChecked());
    auto *format = qobject_cast<QComboBox *>(form.editor(u"format"_s));
    QCOMPARE(format->currentText(), u"Compressed Archive"_s);
    QCOMPARE(format->currentData().toString(), u"tar"_s);
    auto *parts = qobject_cast<QListWidget *>(form.editor(u"parts"_s));
    QCOMPARE(parts->count(), 3);
    QCOMPARE(parts->item(0)->text(), u"Alpha"_s);
    QCOMPARE(parts->item(0)->checkState(), Qt::Unchecked);
    QCOMPARE(parts->item(1)->checkState(), Qt::Checked);
    auto *token = qobject_cast<QLineEdit *>(form.editor(u"token"_s));
    QCOMPARE(token->echoMode(), QLineEdit::Password);
    QVERIFY(token->text().isEmpty());
    QCOMPARE(token->placeholderText(), secretPlaceholderForDefault());
    auto *when = qobject_cast<QDateTimeEdit *>(form.editor(u"when"_s));
    QVERIFY(when->calendarPopup());
    QCOMPARE(when->dateTime().toUTC(),
             QDateTime(QDate(2026, 11, 26), QTime(10, 0), QTimeZone::utc()));
    // Shown in local time: 05:00 in New York.
    QCOMPARE(when->time(), QTime(5, 0));
    QVERIFY(qobject_cast<QPlainTextEdit *>(form.editor(u"notes"_s))->toPlainText().isEmpty());
}

void TestTaskForm::typedValuesAreAccepted()
{
    TaskForm form;
    const TaskPtr task = makeTask(u"all"_s, everyField());
    form.setTask(task);
    form.show();
    QVERIFY(QTest::qWaitForWindowExposed(&form));
    QSignalSpy changed(&form, &TaskForm::changed);

    typeInto(form.editor(u"name"_s), u"bob"_s);
    typeInto(form.editor(u"notes"_s), u"two words"_s);
    typeInto(form.editor(u"count"_s), QString::number(BigInteger));
    typeInto(form.editor(u"ratio"_s), u"0.75"_s);
    QTest::mouseClick(form.editor(u"verbose"_s), Qt::LeftButton);
    qobject_cast<QComboBox *>(form.editor(u"format"_s))->setCurrentIndex(0);
    auto *parts = qobject_cast<QListWidget *>(form.editor(u"parts"_s));
    parts->item(0)->setCheckState(Qt::Checked);
    parts->item(1)->setCheckState(Qt::Unchecked);
    parts->setCurrentRow(2);
    QTest::keyClick(parts, Qt::Key_Space);
    typeInto(form.editor(u"input"_s), m_file.fileName());
    typeInto(form.editor(u"token"_s), u"hunter2"_s);
    auto *when = qobject_cast<QDateTimeEdit *>(form.editor(u"when"_s));
    when->setDateTime(QDateTime(QDate(2026, 7, 1), QTime(8, 30, 15))); // local, EDT
    QVERIFY(changed.count() >= 10);

    const QJsonObject values = form.values();
    QCOMPARE(values.value(u"name"_s), QJsonValue(u"bob"_s));
    QCOMPARE(values.value(u"notes"_s), QJsonValue(u"two words"_s));
    QCOMPARE(exactInteger(values.value(u"count"_s)), std::optional<qint64>(BigInteger));
    QCOMPARE(values.value(u"ratio"_s).toDouble(), 0.75);
    QCOMPARE(values.value(u"verbose"_s), QJsonValue(false));
    QCOMPARE(values.value(u"format"_s), QJsonValue(u"sql"_s));
    QCOMPARE(values.value(u"parts"_s), QJsonValue(QJsonArray{u"a"_s, u"c"_s}));
    QCOMPARE(values.value(u"input"_s), QJsonValue(m_file.fileName()));
    QCOMPARE(values.value(u"token"_s), QJsonValue(u"hunter2"_s));
    QCOMPARE(values.value(u"when"_s), QJsonValue(u"2026-07-01T12:30:15Z"_s));

    const Validation v = validateArguments(task->fields, values);
    QVERIFY2(v.ok(), qPrintable(formatFieldErrors(v.errors)));
    QCOMPARE(exactInteger(v.values.value(u"count"_s)), std::optional<qint64>(BigInteger));
    QCOMPARE(v.values.value(u"when"_s).toString(), u"2026-07-01T12:30:15.000Z"_s);
    QCOMPARE(v.values.value(u"parts"_s), QJsonValue(QJsonArray{u"a"_s, u"c"_s}));
    QVERIFY(form.validate());
    QVERIFY(!form.hasErrors());
}

void TestTaskForm::integerIsExactAtTheLimits()
{
    TaskForm form;
    form.setTask(makeTask(u"ints"_s, {Field(u"n"_s, FieldType::Integer)}));
    auto *edit = qobject_cast<QLineEdit *>(form.editor(u"n"_s));
    typeInto(edit, u"-9223372036854775808"_s);
    QCOMPARE(exactInteger(form.values().value(u"n"_s)),
             std::optional<qint64>(std::numeric_limits<qint64>::min()));
    typeInto(edit, u"9223372036854775807"_s);
    QCOMPARE(exactInteger(form.values().value(u"n"_s)),
             std::optional<qint64>(std::numeric_limits<qint64>::max()));
    // Up steps, saturating at the top.
    QTest::keyClick(edit, Qt::Key_Up);
    QCOMPARE(edit->text(), u"9223372036854775807"_s);
    QTest::keyClick(edit, Qt::Key_Down);
    QCOMPARE(edit->text(), u"9223372036854775806"_s);
    // Letters are refused as typed.
    typeInto(edit, u"12x3"_s);
    QCOMPARE(edit->text(), u"123"_s);
    // One past the top stays as typed and is reported, never wrapped or rounded.
    typeInto(edit, u"9223372036854775808"_s);
    QCOMPARE(form.values().value(u"n"_s), QJsonValue(u"9223372036854775808"_s));
    QVERIFY(!form.errorText(u"n"_s).isEmpty());
    QVERIFY(!form.validate());
}

void TestTaskForm::emptyOptionalFieldsAreLeftOut()
{
    TaskForm form;
    form.setTask(makeTask(u"opt"_s,
                          {Field(u"t"_s, FieldType::Text), Field(u"i"_s, FieldType::Integer),
                           Field(u"s"_s, FieldType::Select).withChoices({{u"x"_s, u"X"_s}}),
                           Field(u"m"_s, FieldType::MultiSelect).withChoices({{u"x"_s, u"X"_s}}),
                           Field(u"d"_s, FieldType::DateTime), Field(u"p"_s, FieldType::Secret)}));
    QCOMPARE(form.values(), QJsonObject());
    QVERIFY(form.validate());
    auto *select = qobject_cast<QComboBox *>(form.editor(u"s"_s));
    QCOMPARE(select->count(), 2); // "(none)" first
    select->setCurrentIndex(1);
    QCOMPARE(form.values(), (QJsonObject{{u"s"_s, u"x"_s}}));
}

void TestTaskForm::patternCheckedAsYouType()
{
    TaskForm form;
    form.setTask(makeTask(u"all"_s, everyField()));
    QWidget *name = form.editor(u"name"_s);
    typeInto(name, u"ab"_s);
    QVERIFY(form.errorText(u"name"_s).isEmpty());
    QTest::keyClicks(name, u"C"_s);
    QVERIFY2(form.errorText(u"name"_s).contains(u"pattern"_s), qPrintable(form.errorText(u"name"_s)));
    QVERIFY(name->accessibleDescription().contains(form.errorText(u"name"_s)));
    QTest::keyClick(name, Qt::Key_Backspace);
    QVERIFY(form.errorText(u"name"_s).isEmpty());
    QVERIFY(!name->accessibleDescription().contains(u"Error"_s));
}

void TestTaskForm::invalidInputShowsEveryErrorAndRunsNothing()
{
    TaskPage page;
    page.setTask(makeTask(u"all"_s, everyField()));
    page.show();
    QVERIFY(QTest::qWaitForWindowExposed(&page));
    QSignalSpy run(&page, &TaskPage::runRequested);
    QSignalSpy start(&page, &TaskPage::startRequested);
    TaskForm *form = page.form();

    typeInto(form->editor(u"name"_s), u"Bob1"_s);  // pattern mismatch
    typeInto(form->editor(u"ratio"_s), u"1.5"_s);  // above max
    // input (required file) left empty
    QTest::mouseClick(page.runButton(), Qt::LeftButton);
    QTest::mouseClick(page.startButton(), Qt::LeftButton);
    QTest::keyClick(form->editor(u"notes"_s), Qt::Key_Return, Qt::ControlModifier);
    QCOMPARE(run.count(), 0);
    QCOMPARE(start.count(), 0);
    QVERIFY(!page.findChild<QDialog *>());

    QVERIFY(form->errorText(u"name"_s).contains(u"pattern"_s));
    QVERIFY2(form->errorText(u"ratio"_s).contains(u"from 0 to 1"_s), qPrintable(form->errorText(u"ratio"_s)));
    QVERIFY(form->errorText(u"input"_s).contains(u"required"_s));
    for (const QString &ok : {u"notes"_s, u"count"_s, u"verbose"_s, u"format"_s, u"parts"_s,
                              u"token"_s, u"when"_s}) {
        QVERIFY2(form->errorText(ok).isEmpty(), qPrintable(ok));
    }
    QCOMPARE(form->firstInvalidEditor(), form->editor(u"name"_s));
    QTRY_COMPARE(QApplication::focusWidget(), form->editor(u"name"_s));
    QVERIFY(form->editor(u"input"_s)->accessibleDescription().contains(u"required"_s));
    // The editors are marked, the valid ones are not.
    const auto marked = [form](const QString &key) {
        for (QWidget *w = form->editor(key); w; w = w->parentWidget()) {
            if (auto *editor = qobject_cast<FieldEditor *>(w))
                return editor->isInvalid();
        }
        return false;
    };
    QVERIFY(marked(u"name"_s));
    QVERIFY(marked(u"ratio"_s));
    QVERIFY(marked(u"input"_s));
    QVERIFY(!marked(u"count"_s));

    // Fixing every field lets Run through.
    typeInto(form->editor(u"name"_s), u"bob"_s);
    typeInto(form->editor(u"ratio"_s), u"1"_s);
    typeInto(form->editor(u"input"_s), m_file.fileName());
    QTest::mouseClick(page.runButton(), Qt::LeftButton);
    QCOMPARE(run.count(), 1);
    QVERIFY(!form->hasErrors());
}

void TestTaskForm::textareaTabMovesFocus()
{
    TaskForm form;
    form.setTask(makeTask(u"all"_s, everyField()));
    form.show();
    QVERIFY(QTest::qWaitForWindowActive(&form));
    auto *notes = qobject_cast<QPlainTextEdit *>(form.editor(u"notes"_s));
    QVERIFY(notes->tabChangesFocus());
    notes->setFocus();
    QTRY_VERIFY(notes->hasFocus());
    QTest::keyClicks(notes, u"x"_s);
    QTest::keyClick(notes, Qt::Key_Tab);
    QCOMPARE(notes->toPlainText(), u"x"_s);
    QTRY_COMPARE(QApplication::focusWidget(), form.editor(u"count"_s));
}

void TestTaskForm::tabOrderFollowsTheForm()
{
    TaskForm form;
    form.setTask(makeTask(u"all"_s, everyField()));
    form.show();
    QVERIFY(QTest::qWaitForWindowActive(&form));
    form.editor(u"name"_s)->setFocus();
    QTRY_VERIFY(form.editor(u"name"_s)->hasFocus());
    // Every field in order; the File and Secret editors have a button after their input.
    QStringList seen;
    for (int i = 0; i < 14; ++i) {
        QWidget *w = QApplication::focusWidget();
        QVERIFY(w);
        const QString name = w->accessibleName();
        if (seen.isEmpty() || seen.last() != name)
            seen << name;
        QTest::keyClick(w, Qt::Key_Tab);
    }
    const QStringList expected{u"Name"_s, u"Notes"_s, u"Count"_s, u"Ratio"_s, u"Verbose"_s,
                               u"Format"_s, u"Parts"_s, u"Input"_s, u"Browse for Input"_s,
                               u"Token"_s, u"Show Token"_s, u"When"_s};
    QCOMPARE(seen.mid(0, expected.size()), expected);
}

void TestTaskForm::pageTabOrderEndsWithTheButtons()
{
    TaskPage page;
    page.setTask(makeTask(u"two"_s, {Field(u"a"_s, FieldType::Text), Field(u"b"_s, FieldType::Bool)}));
    page.show();
    QVERIFY(QTest::qWaitForWindowActive(&page));
    page.form()->editor(u"a"_s)->setFocus();
    QTRY_VERIFY(page.form()->editor(u"a"_s)->hasFocus());
    QTest::keyClick(QApplication::focusWidget(), Qt::Key_Tab);
    QTRY_COMPARE(QApplication::focusWidget(), page.form()->editor(u"b"_s));
    QTest::keyClick(QApplication::focusWidget(), Qt::Key_Tab);
    QTRY_COMPARE(QApplication::focusWidget(), page.startButton());
    QTest::keyClick(QApplication::focusWidget(), Qt::Key_Tab);
    QTRY_COMPARE(QApplication::focusWidget(), page.runButton());

    // A second task rebuilds the form: the order holds.
    page.setTask(makeTask(u"one"_s, {Field(u"c"_s, FieldType::Integer)}));
    page.form()->editor(u"c"_s)->setFocus();
    QTRY_VERIFY(page.form()->editor(u"c"_s)->hasFocus());
    QTest::keyClick(QApplication::focusWidget(), Qt::Key_Tab);
    QTRY_COMPARE(QApplication::focusWidget(), page.startButton());
}

void TestTaskForm::runEmitsValues()
{
    TaskPage page;
    page.setTask(makeTask(u"plain"_s, {Field(u"n"_s, FieldType::Integer).withRequired()}));
    page.show();
    QSignalSpy run(&page, &TaskPage::runRequested);
    QSignalSpy start(&page, &TaskPage::startRequested);
    typeInto(page.form()->editor(u"n"_s), u"42"_s);
    QTest::mouseClick(page.runButton(), Qt::LeftButton);
    QCOMPARE(run.count(), 1);
    QCOMPARE(run.at(0).at(0).toJsonObject(), (QJsonObject{{u"n"_s, 42}}));
    QCOMPARE(run.at(0).at(1).toBool(), false);
    QTest::mouseClick(page.startButton(), Qt::LeftButton);
    QCOMPARE(start.count(), 1);
    QCOMPARE(run.count(), 1);
    QVERIFY(page.runButton()->isDefault());
}

void TestTaskForm::shortcutsRunAndStart()
{
    TaskPage page;
    page.setTask(makeTask(u"plain"_s, {Field(u"t"_s, FieldType::Text)}));
    page.show();
    QVERIFY(QTest::qWaitForWindowActive(&page));
    QSignalSpy run(&page, &TaskPage::runRequested);
    QSignalSpy start(&page, &TaskPage::startRequested);
    QWidget *edit = page.form()->editor(u"t"_s);
    edit->setFocus();
    QTRY_VERIFY(edit->hasFocus());
    QTest::keyClicks(edit, u"hi"_s);
    QTest::keyClick(edit, Qt::Key_Return, Qt::ControlModifier);
    QTRY_COMPARE(run.count(), 1);
    QCOMPARE(start.count(), 0);
    QTest::keyClick(edit, Qt::Key_Return, Qt::ControlModifier | Qt::ShiftModifier);
    QTRY_COMPARE(start.count(), 1);
    QCOMPARE(run.count(), 1);
    QCOMPARE(start.at(0).at(0).toJsonObject(), (QJsonObject{{u"t"_s, u"hi"_s}}));
}

void TestTaskForm::dangerConfirmation()
{
    TaskPage page;
    page.setTask(makeTask(u"wipe-db"_s, {Field(u"t"_s, FieldType::Text)},
                          u"This deletes every table."_s));
    page.show();
    QVERIFY(QTest::qWaitForWindowExposed(&page));
    QSignalSpy run(&page, &TaskPage::runRequested);

    // Wrong key: OK stays disabled, Return does not accept, Cancel emits nothing.
    QTest::mouseClick(page.runButton(), Qt::LeftButton);
    DangerConfirmDialog *dialog = nullptr;
    QTRY_VERIFY((dialog = page.findChild<DangerConfirmDialog *>()) && dialog->isVisible());
    QVERIFY(dialog->isModal() || dialog->windowModality() != Qt::NonModal);
    QVERIFY(!dialog->confirmButton()->isEnabled());
    QList<QLabel *> labels = dialog->findChildren<QLabel *>();
    QVERIFY(std::any_of(labels.cbegin(), labels.cend(), [](const QLabel *l) {
        return l->text() == u"This deletes every table."_s;
    }));
    QTest::keyClicks(dialog->keyEdit(), u"wipe-DB"_s);
    QVERIFY(!dialog->confirmButton()->isEnabled());
    QTest::keyClick(dialog->keyEdit(), Qt::Key_Return);
    QVERIFY(dialog->isVisible());
    QTest::keyClicks(dialog->keyEdit(), u" "_s);
    QVERIFY(!dialog->confirmButton()->isEnabled());
    QTest::mouseClick(dialog->cancelButton(), Qt::LeftButton);
    QTRY_VERIFY(!page.findChild<DangerConfirmDialog *>());
    QCOMPARE(run.count(), 0);

    // The right key enables OK and confirms the run.
    QTest::mouseClick(page.runButton(), Qt::LeftButton);
    QTRY_VERIFY((dialog = page.findChild<DangerConfirmDialog *>()) && dialog->isVisible());
    QTest::keyClicks(dialog->keyEdit(), u"wipe-db"_s);
    QVERIFY(dialog->confirmButton()->isEnabled());
    QVERIFY(dialog->grab().save(QStringLiteral(TASKDECK_SCREENSHOT_DIR) + u"/dangerconfirm.png"_s));
    QTest::mouseClick(dialog->confirmButton(), Qt::LeftButton);
    QTRY_COMPARE(run.count(), 1);
    QCOMPARE(run.at(0).at(1).toBool(), true);
    QTRY_VERIFY(!page.findChild<DangerConfirmDialog *>());
}

void TestTaskForm::expensiveAskedOnceAndRemembered()
{
    TaskPage page;
    page.setTask(makeTask(u"big-job"_s, {}, QString(), true));
    page.show();
    QVERIFY(QTest::qWaitForWindowExposed(&page));
    QSignalSpy start(&page, &TaskPage::startRequested);

    // Cancel: nothing starts, nothing is remembered even with the box ticked.
    QTest::mouseClick(page.startButton(), Qt::LeftButton);
    ExpensiveConfirmDialog *dialog = nullptr;
    QTRY_VERIFY((dialog = page.findChild<ExpensiveConfirmDialog *>()) && dialog->isVisible());
    dialog->dontAskAgainBox()->setChecked(true);
    QTest::mouseClick(dialog->cancelButton(), Qt::LeftButton);
    QTRY_VERIFY(!page.findChild<ExpensiveConfirmDialog *>());
    QCOMPARE(start.count(), 0);
    QVERIFY(ExpensiveConfirmDialog::shouldAsk(u"big-job"_s));

    // Confirmed without the box: starts, and asks again next time.
    QTest::mouseClick(page.startButton(), Qt::LeftButton);
    QTRY_VERIFY((dialog = page.findChild<ExpensiveConfirmDialog *>()) && dialog->isVisible());
    QTest::mouseClick(dialog->confirmButton(), Qt::LeftButton);
    QTRY_COMPARE(start.count(), 1);
    QTRY_VERIFY(!page.findChild<ExpensiveConfirmDialog *>());

    QTest::mouseClick(page.startButton(), Qt::LeftButton);
    QTRY_VERIFY((dialog = page.findChild<ExpensiveConfirmDialog *>()) && dialog->isVisible());
    QTest::mouseClick(dialog->dontAskAgainBox(), Qt::LeftButton);
    QVERIFY(dialog->dontAskAgainBox()->isChecked());
    QTest::mouseClick(dialog->confirmButton(), Qt::LeftButton);
    QTRY_COMPARE(start.count(), 2);
    QTRY_VERIFY(!page.findChild<ExpensiveConfirmDialog *>());
    QCOMPARE(QSettings().value(u"confirm/expensive/big-job"_s).toBool(), false);

    // Remembered: no dialog any more, for this task only.
    QTest::mouseClick(page.startButton(), Qt::LeftButton);
    QCOMPARE(start.count(), 3);
    QVERIFY(!page.findChild<ExpensiveConfirmDialog *>());
    QVERIFY(ExpensiveConfirmDialog::shouldAsk(u"other-job"_s));
}

void TestTaskForm::rerunPrefillLeavesSecretsEmpty()
{
    TaskForm form;
    const TaskPtr task = makeTask(u"all"_s, everyField());
    form.setTask(task);
    const QJsonObject stored = redactSecrets(task->fields, QJsonObject{
        {u"name"_s, u"carol"_s},
        {u"count"_s, BigInteger},
        {u"ratio"_s, 0.25},
        {u"verbose"_s, false},
        {u"format"_s, u"sql"_s},
        {u"parts"_s, QJsonArray{u"a"_s, u"c"_s}},
        {u"input"_s, m_file.fileName()},
        {u"token"_s, u"hunter2"_s},
        {u"when"_s, u"2026-01-02T03:04:05.000Z"_s},
    });
    QCOMPARE(stored.value(u"token"_s).toString(), u"********"_s);
    form.setValues(stored);

    auto *token = qobject_cast<QLineEdit *>(form.editor(u"token"_s));
    QVERIFY(token->text().isEmpty());
    QCOMPARE(token->placeholderText(), secretPlaceholderAfterRerun());
    QJsonObject expected = stored;
    expected.remove(u"token"_s);
    expected.insert(u"when"_s, u"2026-01-02T03:04:05Z"_s);
    QCOMPARE(form.values(), expected);
    QCOMPARE(exactInteger(form.values().value(u"count"_s)), std::optional<qint64>(BigInteger));
    // notes was not in the arguments: emptied.
    QVERIFY(qobject_cast<QPlainTextEdit *>(form.editor(u"notes"_s))->toPlainText().isEmpty());
    QCOMPARE(qobject_cast<QComboBox *>(form.editor(u"format"_s))->currentText(), u"SQL Dump"_s);
}

void TestTaskForm::startErrorsShown()
{
    TaskPage page;
    page.setTask(makeTask(u"all"_s, everyField()));
    StartError invalid;
    invalid.code = StartError::Code::InvalidArguments;
    invalid.message = u"invalid arguments for all"_s;
    invalid.fields = {{u"count"_s, u"expected a whole number"_s},
                      {u"input"_s, u"no such file: \"/nope\""_s},
                      {u"bogus"_s, u"unknown argument"_s}};
    page.setStartErrors(invalid);
    QCOMPARE(page.form()->errorText(u"count"_s), u"expected a whole number"_s);
    QCOMPARE(page.form()->errorText(u"input"_s), u"no such file: \"/nope\""_s);
    QVERIFY(page.form()->errorText(u"name"_s).isEmpty());
    QCOMPARE(page.form()->formErrorText(), u"bogus: unknown argument"_s);

    StartError refused;
    refused.code = StartError::Code::ConfirmationRequired;
    refused.message = u"task all needs confirmation"_s;
    page.setStartErrors(refused);
    QCOMPARE(page.errorMessage(), u"task all needs confirmation"_s);

    page.clearMessages();
    QVERIFY(page.errorMessage().isEmpty());
    QVERIFY(page.form()->errorText(u"count"_s).isEmpty());
    QVERIFY(page.form()->formErrorText().isEmpty());
}

void TestTaskForm::busyState()
{
    TaskPage page;
    page.setTask(makeTask(u"plain"_s, {Field(u"t"_s, FieldType::Text)}));
    page.show();
    QSignalSpy run(&page, &TaskPage::runRequested);
    page.setBusy(true);
    QCOMPARE(page.runButton()->text(), u"Running…"_s);
    QVERIFY(!page.runButton()->icon().isNull());
    QVERIFY(!page.form()->isEnabled());
    QTest::keyClick(&page, Qt::Key_Return, Qt::ControlModifier);
    QCOMPARE(run.count(), 0);
    page.setBusy(false);
    QCOMPARE(page.runButton()->text(), u"&Run"_s);
    QVERIFY(page.form()->isEnabled());
    QVERIFY(page.runButton()->isEnabled());
}

void TestTaskForm::secretShowHide()
{
    TaskForm form;
    form.setTask(makeTask(u"s"_s, {Field(u"p"_s, FieldType::Secret).withTitle(u"Password"_s)}));
    form.show();
    auto *edit = qobject_cast<QLineEdit *>(form.editor(u"p"_s));
    QTest::keyClicks(edit, u"abc"_s);
    QCOMPARE(edit->echoMode(), QLineEdit::Password);
    QToolButton *toggle = nullptr;
    for (QToolButton *b : form.findChildren<QToolButton *>()) {
        if (b->accessibleName() == u"Show Password"_s)
            toggle = b;
    }
    QVERIFY(toggle);
    QTest::mouseClick(toggle, Qt::LeftButton);
    QCOMPARE(edit->echoMode(), QLineEdit::Normal);
    QTest::mouseClick(toggle, Qt::LeftButton);
    QCOMPARE(edit->echoMode(), QLineEdit::Password);
    QCOMPARE(form.values().value(u"p"_s).toString(), u"abc"_s);
}

void TestTaskForm::messageBanner()
{
    MessageBanner banner;
    banner.setMessageType(MessageBanner::Type::Error);
    banner.setText(u"<b>not bold</b>"_s);
    banner.show();
    QVERIFY(QTest::qWaitForWindowExposed(&banner));
    const QList<QLabel *> labels = banner.findChildren<QLabel *>();
    QVERIFY(std::any_of(labels.cbegin(), labels.cend(), [](const QLabel *l) {
        return l->text() == u"<b>not bold</b>"_s && l->textFormat() == Qt::PlainText
               && l->wordWrap();
    }));
    QVERIFY(!banner.isCloseButtonVisible());

    QAction action(u"Reload"_s);
    QSignalSpy triggered(&action, &QAction::triggered);
    banner.addAction(&action);
    QToolButton *actionButton = nullptr;
    QToolButton *closeButton = nullptr;
    for (QToolButton *b : banner.findChildren<QToolButton *>()) {
        if (b->defaultAction() == &action)
            actionButton = b;
        else
            closeButton = b;
    }
    QVERIFY(actionButton);
    QTest::mouseClick(actionButton, Qt::LeftButton);
    QCOMPARE(triggered.count(), 1);

    banner.setCloseButtonVisible(true);
    QVERIFY(banner.isCloseButtonVisible());
    QSignalSpy closed(&banner, &MessageBanner::closed);
    QVERIFY(closeButton && closeButton->isVisible());
    QTest::mouseClick(closeButton, Qt::LeftButton);
    QCOMPARE(closed.count(), 1);
    QVERIFY(banner.isHidden());

    // The accents differ per type and per palette.
    QVERIFY(MessageBanner::accentColor(MessageBanner::Type::Error, false)
            != MessageBanner::accentColor(MessageBanner::Type::Error, true));
    QVERIFY(MessageBanner::accentColor(MessageBanner::Type::Warning, false)
            != MessageBanner::accentColor(MessageBanner::Type::Error, false));
}

void TestTaskForm::fileDropSetsPath()
{
    TaskForm form;
    form.setTask(makeTask(u"all"_s, everyField()));
    form.show();
    QVERIFY(QTest::qWaitForWindowExposed(&form));
    auto *edit = qobject_cast<QLineEdit *>(form.editor(u"input"_s));
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(m_file.fileName())});
    QDragEnterEvent enter(QPoint(5, 5), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(edit, &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(QPointF(5, 5), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(edit, &drop);
    QCOMPARE(edit->text(), m_file.fileName());
    QCOMPARE(form.values().value(u"input"_s).toString(), m_file.fileName());

    QMimeData remote;
    remote.setUrls({QUrl(u"https://example.org/x"_s)});
    QDragEnterEvent refused(QPoint(5, 5), Qt::CopyAction, &remote, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(edit, &refused);
    QVERIFY(!refused.isAccepted());
}

void TestTaskForm::screenshotWithErrors()
{
    TaskPage page;
    page.resize(640, 900);
    page.setTask(makeTask(u"all"_s, everyField(), u"This task deletes data."_s, true));
    page.show();
    QVERIFY(QTest::qWaitForWindowExposed(&page));
    typeInto(page.form()->editor(u"name"_s), u"Bob1"_s);
    typeInto(page.form()->editor(u"ratio"_s), u"2"_s);
    QTest::mouseClick(page.runButton(), Qt::LeftButton);
    QVERIFY(page.form()->hasErrors());
    QCoreApplication::processEvents();
    const QString dir = QStringLiteral(TASKDECK_SCREENSHOT_DIR);
    QVERIFY(page.grab().save(dir + u"/taskpage-errors.png"_s));

    auto *app = qobject_cast<QApplication *>(QCoreApplication::instance());
    applyTheme(*app, Theme::Dark);
    QVERIFY(paletteIsDark());
    QCoreApplication::processEvents();
    QVERIFY(page.grab().save(dir + u"/taskpage-errors-dark.png"_s));
    applyTheme(*app, Theme::System);

    page.clearMessages();
    page.setBusy(true);
    QCoreApplication::processEvents();
    QVERIFY(page.grab().save(dir + u"/taskpage-busy.png"_s));
}

QTEST_MAIN(TestTaskForm)
#include "tst_taskform.moc"
